DROP INDEX attempts_uncertain;
ALTER TABLE attempts DROP COLUMN uncertain;
DROP TABLE limit_slots;
DROP TABLE target_states;

DROP TABLE attempts;
DROP TABLE jobs;
DROP TABLE api_keys;

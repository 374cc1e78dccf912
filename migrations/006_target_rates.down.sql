DROP TABLE IF EXISTS target_rates;

"""Submits two jobs from one script: the first finishes (bounded), the second
fails at run time (CAST('abc…' AS INT) throws in the task)."""
from pyflink.table import EnvironmentSettings, TableEnvironment

t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t_env.get_config().set("pipeline.name", "fjs-two-jobs")
t_env.execute_sql(
    "CREATE TABLE numbers (id BIGINT) WITH ("
    "'connector' = 'datagen', 'number-of-rows' = '100', 'rows-per-second' = '1000')"
)
t_env.execute_sql(
    "CREATE TABLE words (s STRING) WITH ("
    "'connector' = 'datagen', 'number-of-rows' = '10', 'fields.s.length' = '3')"
)
t_env.execute_sql("CREATE TABLE ids (id BIGINT) WITH ('connector' = 'blackhole')")
t_env.execute_sql("CREATE TABLE ints (i INT) WITH ('connector' = 'blackhole')")
t_env.execute_sql("INSERT INTO ids SELECT id FROM numbers")
t_env.execute_sql("INSERT INTO ints SELECT CAST(CONCAT('abc', s) AS INT) FROM words")

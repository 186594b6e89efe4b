"""Submits fine, then fails at run time: CAST('abc' AS INT) throws in the task."""
from pyflink.table import EnvironmentSettings, TableEnvironment

t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t_env.get_config().set("pipeline.name", "fjs-fails-at-runtime")
t_env.execute_sql(
    "CREATE TABLE src (s STRING) WITH ("
    "'connector' = 'datagen', 'number-of-rows' = '10', 'fields.s.length' = '3')"
)
t_env.execute_sql("CREATE TABLE sink (i INT) WITH ('connector' = 'blackhole')")
t_env.execute_sql("INSERT INTO sink SELECT CAST(CONCAT('abc', s) AS INT) FROM src")

"""A bounded Flink SQL job: 1000 generated rows into a blackhole, then FINISHED."""
from pyflink.table import EnvironmentSettings, TableEnvironment

t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t_env.get_config().set("pipeline.name", "fjs-bounded")
t_env.execute_sql(
    "CREATE TABLE src (id BIGINT) WITH ("
    "'connector' = 'datagen', 'number-of-rows' = '1000', 'rows-per-second' = '1000')"
)
t_env.execute_sql("CREATE TABLE sink (id BIGINT) WITH ('connector' = 'blackhole')")
t_env.execute_sql("INSERT INTO sink SELECT id FROM src")

"""A streaming job that fails at run time over and over: every row of an
unbounded datagen source hits CAST('abc...' AS INT), which throws in the task.
Under a fixed-delay restart strategy from the command line, e.g.

    flink run -d -Drestart-strategy.type=fixed-delay \
        -Drestart-strategy.fixed-delay.attempts=1000 \
        -Drestart-strategy.fixed-delay.delay=1s -py restart_loop.py

the job stays RESTARTING/RUNNING while numRestarts grows (about one restart a
second): a restart loop that a state-only view shows as RUNNING. Without a
restart strategy (and without checkpointing) it goes FAILED within seconds,
like fails_at_runtime.py."""
from pyflink.table import EnvironmentSettings, TableEnvironment

t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
t_env.get_config().set("pipeline.name", "fjs-restart-loop")
t_env.execute_sql(
    "CREATE TABLE src (s STRING) WITH ("
    "'connector' = 'datagen', 'rows-per-second' = '5', 'fields.s.length' = '3')"
)
t_env.execute_sql("CREATE TABLE sink (i INT) WITH ('connector' = 'blackhole')")
t_env.execute_sql("INSERT INTO sink SELECT CAST(CONCAT('abc', s) AS INT) FROM src")

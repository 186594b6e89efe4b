#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flink_job_sync_fuzz::check_record(data));

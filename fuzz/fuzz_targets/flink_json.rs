#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = flink_job_sync_fuzz::check_flink_json(data);
});

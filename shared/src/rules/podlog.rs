//! Reading a submitting pod's log, which is untrusted input: the Flink JobIDs
//! it announces, and a short clean tail to explain a failure in words.

use std::sync::LazyLock;

use regex::bytes::Regex;

use crate::rules::model::FlinkJobId;

/// The line `flink run` prints once the JobManager accepted the job. The
/// pattern is anchored on the exact phrase and on exactly 32 lowercase hex
/// digits that no further word character follows, so a decoy such as
/// `JobID ../../jobs/x/cancel` or a 33-digit run never becomes a JobID.
/// The class after the digits is byte-wise (`(?-u:…)`): in Unicode mode it
/// would match only whole UTF-8 characters, and a JobID followed by a stray
/// non-UTF-8 byte would be missed (found by the `podlog` fuzz target).
static SUBMITTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Job has been submitted with JobID ([0-9a-f]{32})(?:(?-u:[^0-9A-Za-z_])|$)")
        .unwrap_or_else(|e| {
            unreachable!("static regex: {e}");
        })
});

static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// Every JobID the log announces, in order of appearance, without repeats.
/// Works on raw bytes: a log need not be UTF-8.
pub fn submitted_job_ids(log: &[u8]) -> Vec<FlinkJobId> {
    let cleaned = ANSI.replace_all(log, &b""[..]);
    let mut ids: Vec<FlinkJobId> = Vec::new();
    for caps in SUBMITTED.captures_iter(&cleaned) {
        let Some(m) = caps.get(1) else { continue };
        let Ok(s) = std::str::from_utf8(m.as_bytes()) else {
            continue;
        };
        if let Some(id) = FlinkJobId::parse(s)
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

/// The last `lines` telling lines of the log, as text (lossy UTF-8, colour
/// codes and control characters removed), at most `max_bytes` long: enough to
/// say why a submission failed without storing the log. Indented lines (Java
/// `at ...` frames, Python `File ...` lines) are left out: after a failed
/// `flink run` they would push the Python error out of any short tail.
pub fn tail_text(log: &[u8], lines: usize, max_bytes: usize) -> String {
    let cleaned = ANSI.replace_all(log, &b""[..]);
    let text = String::from_utf8_lossy(&cleaned);
    let kept: Vec<String> = text
        .lines()
        .map(|l| {
            l.chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect::<String>()
        })
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t']))
        .collect();
    let start = kept.len().saturating_sub(lines);
    let joined = kept[start..].join("\n");
    if joined.len() <= max_bytes {
        return joined;
    }
    // Keep the end, which is where the error is.
    let mut cut = joined.len() - max_bytes;
    while !joined.is_char_boundary(cut) {
        cut += 1;
    }
    format!("…{}", &joined[cut..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ef163bff25523543d6699ac3c0e9b72e";
    const B: &str = "b73bb3f147dc3bd5b562d668b64b4c58";

    fn ids(log: &[u8]) -> Vec<String> {
        submitted_job_ids(log)
            .into_iter()
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn jobid_line_of_flink_run_is_found() {
        let log = format!("Starting...\nJob has been submitted with JobID {A}\n");
        assert_eq!(ids(log.as_bytes()), [A]);
    }

    #[test]
    fn several_ids_are_kept_in_order_without_repeats() {
        let log = format!(
            "Job has been submitted with JobID {B}\r\nretry\r\nJob has been submitted with JobID {A}\r\nJob has been submitted with JobID {B}"
        );
        assert_eq!(ids(log.as_bytes()), [B, A]);
    }

    #[test]
    fn decoys_never_become_job_ids() {
        for log in [
            "Job has been submitted with JobID ../../jobs/x/cancel".to_string(),
            format!("Job has been submitted with JobID {}", A.to_uppercase()),
            format!("Job has been submitted with JobID {A}0"),
            format!("Job has been submitted with JobID {A}x"),
            format!("Job has been submitted with JobID {}", &A[..31]),
            format!("job has been submitted with jobid {A}"),
        ] {
            assert!(ids(log.as_bytes()).is_empty(), "{log}");
        }
    }

    #[test]
    fn ansi_colours_and_invalid_utf8_do_not_hide_the_id() {
        let mut log = b"\xff\xfe garbage \x1b[32mJob has been submitted with JobID ".to_vec();
        log.extend_from_slice(A.as_bytes());
        log.extend_from_slice(b"\x1b[0m\n\xc3\x28");
        assert_eq!(ids(&log), [A]);
    }

    #[test]
    fn a_job_id_followed_by_a_byte_that_is_not_utf8_is_found() {
        let mut log = format!("Job has been submitted with JobID {A}").into_bytes();
        log.push(0x8a);
        assert_eq!(ids(&log), [A]);
        let mut log = format!("Job has been submitted with JobID {A}").into_bytes();
        log.extend_from_slice(b"\xff\n");
        assert_eq!(ids(&log), [A]);
    }

    #[test]
    fn tail_keeps_last_lines_and_the_end_when_too_long() {
        let log = b"one\n\ntwo\n\x1b[31mthree\x1b[0m\r\nfour\n";
        assert_eq!(tail_text(log, 2, 100), "three\nfour");
        let flink_run = b"Traceback (most recent call last):\n  File \"job.py\", line 2\n    raise X\nRuntimeError: no table\nProgramAbortException: Python process exits with code: 1\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)\n\t... 15 more\n";
        assert_eq!(
            tail_text(flink_run, 2, 200),
            "RuntimeError: no table\nProgramAbortException: Python process exits with code: 1"
        );
        let long = "x".repeat(50) + "\nEND";
        let t = tail_text(long.as_bytes(), 10, 10);
        assert!(t.ends_with("\nEND") && t.starts_with('…'), "{t}");
        assert!(t.len() <= 10 + '…'.len_utf8());
    }

    mod hostile {
        use super::super::*;
        use proptest::prelude::*;

        fn hex32() -> impl Strategy<Value = String> {
            "[0-9a-f]{32}"
        }

        /// Logs pieced from what makes extraction hard: the phrase, JobIDs,
        /// runs of hex digits of any length and case, colour codes, line
        /// ends, word characters and arbitrary bytes. Random bytes alone would almost
        /// never hold the phrase, and the property would hold vacuously.
        fn hostile_log() -> impl Strategy<Value = Vec<u8>> {
            let piece = prop_oneof![
                Just(b"Job has been submitted with JobID ".to_vec()),
                hex32().prop_map(String::into_bytes),
                "[0-9a-fA-F]{0,40}".prop_map(String::into_bytes),
                Just(b"\x1b[32m".to_vec()),
                Just(b"\x1b[0m".to_vec()),
                Just(b"\r\n".to_vec()),
                "[g-zG-Z_./]{1,3}".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..8),
            ];
            proptest::collection::vec(piece, 0..24).prop_map(|ps| ps.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever the bytes, only 32 lowercase hex digits come out.
            #[test]
            fn nothing_but_32_lowercase_hex_ever_becomes_a_job_id(log in hostile_log()) {
                // Each one stands in the log (colour codes aside) right after
                // the submission phrase: none is pieced together or made up.
                let cleaned = ANSI.replace_all(&log, &b""[..]);
                let ids = submitted_job_ids(&log);
                for id in &ids {
                    let line = format!("Job has been submitted with JobID {id}");
                    prop_assert!(cleaned.windows(line.len()).any(|w| w == line.as_bytes()), "{id}");
                }
                // Checked whether or not any came out: never more JobIDs
                // than the phrase stands in the log.
                let phrase = b"Job has been submitted with JobID ";
                let said = cleaned.windows(phrase.len()).filter(|w| w == phrase).count();
                prop_assert!(ids.len() <= said, "{} JobIDs from {said} phrases", ids.len());
                let _ = tail_text(&log, 20, 512);
            }

            /// The real line survives CRLF endings, colour codes, invalid UTF-8
            /// and noise around it.
            #[test]
            fn the_jobid_line_is_found_through_crlf_colours_and_garbage(
                id in hex32(),
                before in proptest::collection::vec(any::<u8>(), 0..512),
                crlf in any::<bool>(),
                colour in any::<bool>(),
            ) {
                let mut log = before.clone();
                log.extend_from_slice(b"\n");
                if colour { log.extend_from_slice(b"\x1b[32m"); }
                log.extend_from_slice(format!("Job has been submitted with JobID {id}").as_bytes());
                if colour { log.extend_from_slice(b"\x1b[0m"); }
                log.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                log.extend_from_slice(&[0xff, 0xfe, b'x', b'\n']);
                let ids: Vec<String> = submitted_job_ids(&log).iter().map(|i| i.to_string()).collect();
                prop_assert!(ids.contains(&id), "{ids:?}");
            }

            /// A JobID cut by the byte limit is not completed from thin air: a
            /// prefix of it is never taken for a JobID.
            #[test]
            fn a_jobid_split_by_the_byte_limit_is_not_taken(id in hex32(), keep in 0usize..32) {
                let line = format!("Job has been submitted with JobID {}", &id[..keep]);
                prop_assert!(submitted_job_ids(line.as_bytes()).is_empty());
            }

            /// Decoys around a real line: path tricks, upper case, 33 digits.
            #[test]
            fn decoys_beside_a_real_line_never_add_ids(id in hex32(), decoy in hex32()) {
                let log = format!(
                    "Job has been submitted with JobID ../../jobs/{decoy}/cancel\nJob has been submitted with JobID {}\nJob has been submitted with JobID {decoy}0\nJob has been submitted with JobID {id}\n",
                    decoy.to_uppercase()
                );
                let ids: Vec<String> = submitted_job_ids(log.as_bytes()).iter().map(|i| i.to_string()).collect();
                prop_assert_eq!(ids, vec![id]);
            }
        }

        #[test]
        fn a_huge_log_with_many_ids_keeps_each_once_in_order() {
            let mut log = Vec::new();
            let ids: Vec<String> = (0..2000).map(|i| format!("{:032x}", i * 7 + 1)).collect();
            for (n, id) in ids.iter().enumerate() {
                log.extend_from_slice(
                    format!(
                        "{}\nJob has been submitted with JobID {id}\r\n",
                        "y".repeat(n % 300)
                    )
                    .as_bytes(),
                );
                log.extend_from_slice(
                    format!("Job has been submitted with JobID {}\n", ids[0]).as_bytes(),
                );
            }
            let found: Vec<String> = submitted_job_ids(&log)
                .iter()
                .map(|i| i.to_string())
                .collect();
            assert_eq!(found, ids);
        }
    }
}

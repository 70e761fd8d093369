//! The `switchboard` binary's pure commands, on the examples the README documents.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn readme_cases() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    readme
        .split("<!-- decide-case -->")
        .skip(1)
        .map(|part| {
            let start = part.find("```json").unwrap() + "```json".len();
            let end = start + part[start..].find("```").unwrap();
            part[start..end].to_owned()
        })
        .collect()
}

fn decide(case: &str, extra: &[&str]) -> (bool, Value, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["decide", "--input", "-", "--seed", "7"])
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(case.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn decide_answers_every_case_in_the_readme() {
    let cases = readme_cases();
    assert_eq!(cases.len(), 3, "the README documents three cases");
    let verdicts: Vec<Value> = cases
        .iter()
        .map(|c| {
            let (ok, v, err) = decide(c, &[]);
            assert!(ok, "{err}");
            v
        })
        .collect();
    assert_eq!(verdicts[0]["decision"], "AUTO_SEND");
    assert!(verdicts[0]["delay"]["delay_ms"].as_u64().unwrap() >= 3000);
    assert_eq!(verdicts[1]["decision"], "NEED_APPROVAL");
    assert_eq!(verdicts[1]["autosend_block_reason"], "NIGHT_MODE");
    assert_eq!(
        verdicts[1]["night_auto_reply"],
        "We are closed now and answer from 9:00."
    );
    assert_eq!(verdicts[2]["silent"], "STATUS_ESCALATED");
    assert_eq!(verdicts[2]["decision"], Value::Null);
    // Same seed, same plan.
    assert_eq!(decide(&cases[0], &[]).1, verdicts[0]);
}

#[test]
fn decide_refuses_bad_cases_with_the_reason() {
    let case = readme_cases().remove(0);
    let (ok, _, err) = decide(&case.replace("\"now\"", "\"when\""), &[]);
    assert!(!ok);
    assert!(err.contains("when"), "{err}");
    let (ok, _, err) = decide(
        &case.replace("\"autosend_allowed\": true", "\"t_auto\": 0.1"),
        &[],
    );
    assert!(!ok);
    assert!(err.contains("t_escalate < t_auto"), "{err}");
}

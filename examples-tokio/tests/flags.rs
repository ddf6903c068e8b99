//! The command line: absurd values are refused up front with a clear message (no panic, no
//! silent hang), every flag can come from the environment, and SIGTERM drains like Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use examples_tokio::app::Args;

fn refused(flag: &str, value: &str) -> String {
    let err = Args::try_parse_from(["enrich", flag, value]).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{flag} {value}");
    err.to_string()
}

#[test]
fn absurd_values_are_refused_with_the_flag_named() {
    for (flag, value, says) in [
        ("--rate", "1e-300", "expected 0 or 1 to 10000000 messages per second"),
        ("--rate", "0.0000001", "expected 0 or 1 to 10000000 messages per second"),
        ("--rate", "NaN", "expected 0 or 1 to 10000000"),
        ("--rate", "1e400", "expected 0 or 1 to 10000000"),
        ("--gap-ms", "18446744073709551615", "0..=3600000"),
        ("--customers", "9223372036854775807", "1..=10000000"),
        ("--customers", "0", "1..=10000000"),
        ("--fetch-ms", "inf", "expected 0 to 60000 milliseconds"),
        ("--db-latency-ms", "1e9", "expected 0 to 60000 milliseconds"),
        ("--max-wait-ms", "0", "1..=3600000"),
        ("--idle-ms", "99999999999", "1..=3600000"),
        ("--batch-size", "1000", "1..=256"),
        ("--instances", "0", "1..=16"),
        ("-X", "no-equals-sign", "expected KEY=VALUE"),
    ] {
        let msg = refused(flag, value);
        assert!(msg.contains(flag), "{flag} {value}: {msg}");
        assert!(msg.contains(says), "{flag} {value}: {msg}");
    }
    // The boundaries themselves are fine.
    let ok = Args::try_parse_from([
        "enrich",
        "--rate",
        "0",
        "--gap-ms",
        "3600000",
        "--customers",
        "10000000",
    ]);
    assert!(ok.is_ok());
    let args = Args::try_parse_from(["enrich", "-X", "security.protocol=ssl", "-X", "debug=cgrp,fetch"]).unwrap();
    assert_eq!(
        args.kafka_config,
        [
            ("security.protocol".into(), "ssl".into()),
            ("debug".into(), "cgrp,fetch".into())
        ]
    );
    let args = Args::try_parse_from(["enrich", "-X", "a=b=c;linger.ms=5"]).unwrap();
    assert_eq!(
        args.kafka_config,
        [("a".into(), "b=c".into()), ("linger.ms".into(), "5".into())]
    );
}

#[test]
fn the_binary_refuses_fast_and_reads_the_environment() {
    let exe = env!("CARGO_BIN_EXE_enrich");
    let started = Instant::now();
    let out = Command::new(exe).args(["--rate", "1e-300"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--rate"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The same value from the environment.
    let out = Command::new(exe).env("ENRICH_RATE", "0.0000001").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate"));

    // DATABASE_URL is read.
    let out = Command::new(exe)
        .env("DATABASE_URL", "mysql://example/db")
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("enrich: error: unsupported database URL mysql://example/db"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "refusals are immediate");
}

/// Starts a long run, waits until it has written something, sends `signal`, and checks that it
/// drained: exit 0, the report printed, every message it pulled written once.
fn drains_on(signal: &str) {
    let dir = common::temp_dir(&format!("signal-{signal}"));
    let out_dir = dir.display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_enrich"))
        .args([
            "--quiet",
            "--prefetch",
            "on",
            "--messages",
            "10000000",
            "--rate",
            "5000",
        ])
        .args(["--db-latency-ms", "1", "--customers", "500", "--out-dir", &out_dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let file = dir.join("enriched-on.jsonl");
    let lines = || std::fs::read_to_string(&file).map_or(0, |t| t.lines().count());
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines() < 500 {
        assert!(Instant::now() < deadline, "no output within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(
        // The shell's own `kill`: no procps needed.
        Command::new("sh")
            .args(["-c", &format!("kill -{signal} {pid}")])
            .status()
            .unwrap()
            .success()
    );
    let status = common::wait_exit(&mut child, 30, &format!("after SIG{signal}"));
    let stdout: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "SIG{signal}: {stderr}");
    assert!(stderr.contains("finishing the batches already pulled"), "{stderr}");
    let items: u64 = stdout
        .iter()
        .find_map(|l| l.strip_prefix("items"))
        .map(|v| v.trim().parse().unwrap())
        .expect("the report");
    // Every message pulled was written, once; the partial batch was cut by the stop.
    common::check_output(&file, items, 500);
    assert!(stdout.iter().any(|l| l.trim_start().starts_with("Close")), "{stdout:?}");
}

#[test]
fn sigterm_drains_like_ctrl_c() {
    drains_on("TERM");
    drains_on("INT");
}

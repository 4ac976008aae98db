//! Errors: one `error:` line on stderr, exit 1 or 2, never a panic or backtrace, for any
//! input (missing, empty, unrelated, truncated, random, permission-denied, not a
//! directory), and clap's usage errors exit 2.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod cli_common;

use std::path::{Path, PathBuf};

use cli_common::{Run, assert_one_error_line, import_n, s, walstore};

/// Bytes that look random (no store header anywhere).
fn noise(len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761).rotate_left(7) >> 5) as u8)
        .collect()
}

/// Every kind of bad input, each as a path to hand to a command.
fn bad_inputs(root: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut inputs = Vec::new();
    let missing = root.join("missing");
    inputs.push(("missing dir", missing));
    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    inputs.push(("empty dir", empty));
    let unrelated = root.join("unrelated");
    std::fs::create_dir(&unrelated).unwrap();
    std::fs::write(unrelated.join("photo.jpg"), noise(300)).unwrap();
    inputs.push(("unrelated dir", unrelated));
    let file = root.join("a-file");
    std::fs::write(&file, "not a dir").unwrap();
    inputs.push(("file, not a dir", file));
    let random_wal = root.join("random-wal");
    std::fs::create_dir(&random_wal).unwrap();
    std::fs::write(random_wal.join("00000000000000000001.wal"), noise(10_000)).unwrap();
    inputs.push(("random .wal", random_wal));
    let empty_wal = root.join("empty-wal");
    std::fs::create_dir(&empty_wal).unwrap();
    std::fs::write(empty_wal.join("00000000000000000001.wal"), "").unwrap();
    inputs.push(("empty .wal", empty_wal));
    let random_snap = root.join("random-snap");
    std::fs::create_dir(&random_snap).unwrap();
    std::fs::write(random_snap.join("00000000000000000004.snap"), noise(5000)).unwrap();
    inputs.push(("random .snap", random_snap));
    let truncated_snap = root.join("truncated-snap");
    import_n(&truncated_snap, 3);
    walstore(&["checkpoint", s(&truncated_snap)]).ok();
    for wal in cli_common::names_ending(&truncated_snap, ".wal") {
        std::fs::remove_file(truncated_snap.join(wal)).unwrap();
    }
    cli_common::truncate_half(&truncated_snap.join("00000000000000000003.snap"));
    // Without its parity sidecar, which would rebuild it (tests/parity.rs).
    cli_common::remove_sidecars(&truncated_snap);
    inputs.push(("truncated .snap", truncated_snap));
    let directory_wal = root.join("dir-named-wal");
    std::fs::create_dir_all(directory_wal.join("00000000000000000001.wal")).unwrap();
    inputs.push(("directory named like a segment", directory_wal));
    inputs
}

/// Any run: exit 0 with no stderr, or an error exit with one `error:` line.
fn assert_clean(what: &str, args: &[&str], run: &Run) {
    match run.code {
        0 => assert!(run.stderr.is_empty(), "{what} {args:?}: {run:#?}"),
        1 | 2 => assert_one_error_line(run),
        _ => panic!("{what} {args:?}: exit code {}: {run:#?}", run.code),
    }
}

#[test]
fn no_input_makes_any_command_panic() {
    let commands: [&[&str]; 10] = [
        &["dump", "DIR", "--json"],
        &["dump", "DIR"],
        &["verify", "DIR"],
        &["verify", "DIR", "--json"],
        &["stats", "DIR", "--json"],
        &["backup", "DIR", "DEST"],
        &["checkpoint", "DIR"],
        &["recover", "DIR"],
        &["recover", "DIR", "--salvage", "--json"],
        &["import", "DIR"],
    ];
    for command in commands {
        // Fresh inputs for each command: a writer may repair (change) what it is given.
        let tmp = tempfile::tempdir().unwrap();
        for (what, dir) in bad_inputs(tmp.path()) {
            let dest = tmp.path().join("dest");
            let args: Vec<&str> = command
                .iter()
                .map(|arg| match *arg {
                    "DIR" => s(&dir),
                    "DEST" => s(&dest),
                    other => other,
                })
                .collect();
            let run = walstore(&args);
            assert_clean(what, &args, &run);
            // Import makes a store of a missing or store-less directory; an empty first
            // segment is a torn tail of a new store, which every command can handle.
            let succeeds = (args[0] == "import"
                && matches!(what, "missing dir" | "empty dir" | "unrelated dir"))
                || what == "empty .wal";
            assert_eq!(run.code == 0, succeeds, "{what} {args:?}: {run:#?}");
            let _ = std::fs::remove_dir_all(&dest);
        }
    }
}

#[test]
fn permission_denied_is_one_error_line() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    import_n(&dir, 2);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&dir).is_ok() {
        // Running as root: permissions do not deny anything here.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipped: permissions are not enforced for this user");
        return;
    }
    for args in [
        vec!["dump", s(&dir), "--json"],
        vec!["verify", s(&dir)],
        vec!["stats", s(&dir)],
        vec!["recover", s(&dir)],
        vec!["checkpoint", s(&dir)],
        vec!["import", s(&dir)],
    ] {
        let run = walstore(&args).fails(1);
        assert!(run.stderr.contains(s(&dir)), "{run:?}");
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn usage_errors_exit_2_with_one_error_line() {
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["dump"],
        vec!["dump", "a", "b"],
        vec!["verify", "--nope", "x"],
        vec!["import", "x", "--durability", "sometimes"],
        vec!["import", "x", "--checkpoint-every", "-1"],
        vec!["import", "x", "--checkpoint-every", "many"],
        vec!["backup", "x"],
        vec!["search", "x"],
        vec!["index", "--batch-files", "0"],
        vec!["watch"],
        vec!["search", "x", "q", "--limit", "ten"],
    ] {
        let run = walstore(&args).fails(2);
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }
}

#[test]
fn help_and_version_succeed() {
    let run = walstore(&["--help"]).ok();
    for command in [
        "import",
        "dump",
        "verify",
        "recover",
        "checkpoint",
        "stats",
        "backup",
    ] {
        assert!(run.stdout.contains(command), "{command}: {run:?}");
    }
    let run = walstore(&["import", "--help"]).ok();
    assert!(run.stdout.contains("--checkpoint-every"), "{run:?}");
    assert!(
        walstore(&["--version"])
            .ok()
            .stdout
            .starts_with("walstore ")
    );
}

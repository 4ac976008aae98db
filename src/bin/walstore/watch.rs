//! `walstore watch DIR`: a small `tail -f` for the store. Prints one line per new commit
//! as it becomes visible: `lsn <N> <summary>`.

use std::path::PathBuf;
use std::time::Duration;

use walstore::model::op::Op;

use crate::CliResult;
use crate::open;
use crate::output::{Out, quoted};

/// Operations named in one summary line at most.
const SUMMARY_OPS_MAX: usize = 4;

/// Arguments of `walstore watch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store directory.
    pub dir: PathBuf,
    /// How often to look for new commits, in milliseconds.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub interval_ms: u64,
    /// Stop after printing this many commits (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

/// Runs the command.
pub fn run(args: &Args) -> CliResult {
    let store = open::reader(&args.dir)?;
    let mut out = Out::new();
    let mut printed = 0u64;
    loop {
        let before = store.lsn();
        let mut lines = Vec::new();
        let after = store
            .refresh_with(&mut |lsn, ops| lines.push(format!("lsn {lsn} {}", summary(ops))))?;
        // A reload from a newer snapshot skips the commits it covers.
        if lines.is_empty() && after > before {
            lines.push(format!(
                "lsn {after} (lsn {}..={after} read from a newer snapshot)",
                before + 1
            ));
        }
        for line in lines {
            out.line(line)?;
            out.flush()?;
            printed += 1;
            if args.count.is_some_and(|count| printed >= count) {
                return out.finish();
            }
        }
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
}

/// `N ops: set_meta "k", put_fingerprint "code:src/a.rs", ...`.
fn summary(ops: &[Op]) -> String {
    let named: Vec<String> = ops
        .iter()
        .take(SUMMARY_OPS_MAX)
        .map(|op| {
            let kind = match op {
                Op::SetMeta { .. } => "set_meta",
                Op::DelMeta { .. } => "del_meta",
                Op::SetConfig { .. } => "set_config",
                Op::DelConfig { .. } => "del_config",
                Op::PutFingerprint { .. } => "put_fingerprint",
                Op::DelFingerprint { .. } => "del_fingerprint",
                Op::IndexDoc { .. } => "index_doc",
                Op::RemoveDoc { .. } => "remove_doc",
            };
            format!("{kind} {}", quoted(&op.touched().1))
        })
        .collect();
    let more = if ops.len() > SUMMARY_OPS_MAX {
        ", ..."
    } else {
        ""
    };
    format!("{} ops: {}{more}", ops.len(), named.join(", "))
}

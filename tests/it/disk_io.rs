//! What the real binary does to the disk: nothing at all while idle (no write, no fsync,
//! next to no CPU), and a directory fsync for every name whose existence matters (the
//! data dir, both stores), so a power cut cannot take back a file the server relied on.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

/// Bytes the process caused to be written to storage, and its CPU time in clock ticks.
fn io_and_cpu(pid: u32) -> Option<(u64, u64)> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let write_bytes = io
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ") ".
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((write_bytes, ticks))
}

fn have_strace() -> bool {
    let found = std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("FRONTDESK_REQUIRE_STRACE").is_ok() {
        panic!("strace is required (FRONTDESK_REQUIRE_STRACE is set) but cannot be run");
    }
    found
}

async fn wait_ready(base: &str) {
    let client = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An idle server with default settings: over a 10 s window after it settled, no byte
/// reaches storage, no fsync or fdatasync is made (counted with strace attached, where it
/// is installed), and it uses under 1 % of a core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_writes_nothing_and_sleeps() {
    if !Path::new("/proc/self/io").exists() {
        eprintln!("SKIPPED: /proc/PID/io is not available here; the idle check needs it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config_file(dir.path(), "");
    let server = BinServer::start(&config);
    let pid = server.child.id();
    wait_ready(&server.base).await;
    // Settle: start-up work (the model loaded, migrations checked) is over.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let strace = have_strace().then(|| {
        let out = dir.path().join("idle-trace.txt");
        let child = std::process::Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=fsync,fdatasync,sync_file_range,msync", "-o"])
            .arg(&out)
            .args(["-p", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        (child, out)
    });
    if strace.is_none() {
        eprintln!("strace is not installed: fsyncs are not counted, only bytes written and CPU");
    }
    // strace needs a moment to attach to every thread before the window starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (w0, cpu0) = io_and_cpu(pid).unwrap();
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let (w1, cpu1) = io_and_cpu(pid).unwrap();
    let fsyncs = strace.map(|(mut child, out)| {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let trace = std::fs::read_to_string(out).unwrap_or_default();
        trace
            .lines()
            .filter(|l| l.contains("sync"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    // SAFETY: sysconf only reads a system constant.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let core_share = (cpu1 - cpu0) as f64 / ticks_per_s / window.as_secs_f64();
    eprintln!(
        "idle 10 s: {} bytes written, {:.2} % of a core, fsyncs {:?}",
        w1 - w0,
        core_share * 100.0,
        fsyncs.as_ref().map(Vec::len)
    );
    assert_eq!(w1 - w0, 0, "an idle server wrote {} bytes to storage in 10 s", w1 - w0);
    if let Some(f) = fsyncs {
        assert!(
            f.is_empty(),
            "an idle server called fsync/fdatasync {} times in 10 s, e.g. {:?}",
            f.len(),
            f.first()
        );
    }
    assert!(
        core_share < 0.01,
        "an idle server used {:.2} % of a core",
        core_share * 100.0
    );
}

/// A fresh data dir under a fresh parent: the parent is fsynced after the data dir is
/// created, and the data dir after each store file is created — before the server says it
/// listens, so before anything is acknowledged. Traced with strace (`-y` names each fd).
#[tokio::test]
async fn every_new_name_is_made_durable_by_a_directory_fsync() {
    if !have_strace() {
        eprintln!("SKIPPED: strace is not installed; ./scripts/test installs it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let config = write_config_file(&root, "");
    let data = root.join("data");
    assert!(!data.exists());
    let trace = root.join("trace.txt");
    let mut strace = std::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-y",
            "-e",
            "trace=mkdir,mkdirat,openat,fsync,fdatasync",
            "-o",
        ])
        .arg(&trace)
        .arg(bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env("FRONTDESK_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(strace.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("frontdesk listening on "), "{line:?}");
    // The server is strace's child: stop it, and strace ends with it.
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", strace.id())).unwrap();
    let server_pid = children
        .split_whitespace()
        .next()
        .expect("the traced server's pid")
        .to_string();
    let _ = std::process::Command::new("kill").args(["-TERM", &server_pid]).status();
    let _ = strace.wait();
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // Only the start-up, up to the point the server listens (its first stdout write is
    // not traced; the shutdown's own syncs must not count, so cut at the first SIGTERM).
    let end = lines.iter().position(|l| l.contains("SIGTERM")).unwrap_or(lines.len());
    let lines = &lines[..end];
    let created = |name: &Path, call: &str| {
        let quoted = format!("\"{}\"", name.display());
        lines
            .iter()
            .position(|l| l.contains(call) && l.contains(&quoted) && (call != "openat" || l.contains("O_CREAT")))
    };
    let dir_synced_after = |dir: &Path, from: usize| {
        let fd_path = format!("<{}>)", dir.display());
        lines[from..]
            .iter()
            .any(|l| (l.contains("fsync(") || l.contains("fdatasync(")) && l.contains(&fd_path))
    };
    let made = created(&data, "mkdir")
        .unwrap_or_else(|| panic!("the data dir was not created by the server:\n{}", lines.join("\n")));
    assert!(
        dir_synced_after(&root, made),
        "{} was created but its parent {} was never fsynced",
        data.display(),
        root.display()
    );
    for store in ["queue.redb", "frontdesk.db"] {
        let file = data.join(store);
        let made = created(&file, "openat").unwrap_or_else(|| panic!("{store} was not created"));
        assert!(
            dir_synced_after(&data, made),
            "{store} was created but the data dir was never fsynced after it"
        );
    }
}

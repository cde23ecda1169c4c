//! The real binary: run once ([`run`]) or serving in the background ([`Exporter`]), its
//! stderr collected, killed when the test ends however it ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{poll_until, request, Response};

pub const BIN: &str = env!("CARGO_BIN_EXE_indicator_exporter");

/// How long start-up, a log line or an exit may take unless a test says otherwise.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The binary, with no arguments yet.
pub fn command() -> Command {
    Command::new(BIN)
}

/// Runs the binary with `args` to its end (`--config.check`, `--version`, `export`, …).
pub fn run(args: &[&str]) -> Output {
    command()
        .args(args)
        .output()
        .expect("run indicator_exporter")
}

/// The lines the process wrote on stderr, and whether it closed it.
#[derive(Default)]
struct Log {
    lines: Vec<String>,
    closed: bool,
}

/// The binary running in the background; killed and reaped on drop.
pub struct Exporter {
    child: Child,
    addr: String,
    log: Arc<(Mutex<Log>, Condvar)>,
}

impl Exporter {
    /// Starts the binary on an ephemeral loopback port with `args`, and waits until it
    /// listens.
    #[track_caller]
    pub fn start(args: &[&str]) -> Exporter {
        Exporter::start_within(args, DEADLINE)
    }

    /// [`Exporter::start`], for a start-up that may take up to `deadline`.
    #[track_caller]
    pub fn start_within(args: &[&str], deadline: Duration) -> Exporter {
        let mut cmd = command();
        cmd.arg("--web.listen-address=127.0.0.1:0").args(args);
        let mut e = Exporter::spawn(cmd);
        e.wait_listening(deadline);
        e
    }

    /// Spawns `cmd` (the binary, or something that becomes it), its stderr collected; does
    /// not wait for anything.
    pub fn spawn(mut cmd: Command) -> Exporter {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start indicator_exporter");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        let shared = log.clone();
        // Drains stderr for the whole test so the exporter never blocks on a full pipe.
        std::thread::spawn(move || {
            let (log, changed) = &*shared;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[exporter] {line}");
                log.lock().unwrap().lines.push(line);
                changed.notify_all();
            }
            log.lock().unwrap().closed = true;
            changed.notify_all();
        });
        Exporter {
            child,
            addr: String::new(),
            log,
        }
    }

    /// Waits until the process logs that it listens; returns its (first) address.
    #[track_caller]
    pub fn wait_listening(&mut self, deadline: Duration) -> &str {
        self.addr = self.addresses(1, deadline).remove(0);
        &self.addr
    }

    /// The addresses of the first `n` `msg=listening` lines, waiting for them at most
    /// `deadline`.
    #[track_caller]
    pub fn addresses(&self, n: usize, deadline: Duration) -> Vec<String> {
        self.wait_log(&format!("{n} `msg=listening` lines"), deadline, |lines| {
            let addrs: Vec<String> = lines
                .iter()
                .filter(|l| l.contains("msg=listening"))
                .filter_map(|l| {
                    l.split_whitespace()
                        .find_map(|f| f.strip_prefix("address="))
                        .map(|a| a.trim_matches('"').to_string())
                })
                .collect();
            (addrs.len() >= n).then(|| addrs[..n].to_vec())
        })
    }

    /// The address it listens on, as logged.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> Response {
        request("GET", &self.url(path), &[]).expect("request")
    }

    /// The body of `/metrics`, which must answer 200.
    #[track_caller]
    pub fn metrics(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "/metrics: {}", r.text());
        r.text()
    }

    /// The first log line containing `needle`, waiting for it at most `deadline`; panics at
    /// once if the process closes stderr (exits) without having logged it.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str, deadline: Duration) -> String {
        self.wait_log(&format!("a log line with {needle:?}"), deadline, |lines| {
            lines.iter().find(|l| l.contains(needle)).cloned()
        })
    }

    /// Waits until `found` finds something in the log lines, woken by each new line.
    #[track_caller]
    fn wait_log<T>(
        &self,
        what: &str,
        deadline: Duration,
        mut found: impl FnMut(&[String]) -> Option<T>,
    ) -> T {
        let end = Instant::now() + deadline;
        let (log, changed) = &*self.log;
        let mut log = log.lock().unwrap();
        loop {
            if let Some(v) = found(&log.lines) {
                return v;
            }
            if log.closed {
                panic!(
                    "the exporter closed stderr without {what}:\n{}",
                    log.lines.join("\n")
                );
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out after {deadline:?} waiting for {what}; the log:\n{}",
                    log.lines.join("\n")
                );
            }
            log = changed.wait_timeout(log, left).unwrap().0;
        }
    }

    /// Everything logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.log.0.lock().unwrap().lines.join("\n")
    }

    /// Sends `signal` (`libc::SIGHUP`, …) to the process.
    #[track_caller]
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on the child's own pid; no memory effects in this process.
        let r = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            r,
            0,
            "kill -{signal} {pid}: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Its exit status if it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for the process to end, at most `deadline`, and for its stderr to be read to the
    /// end; panics (and the drop kills it) otherwise.
    #[track_caller]
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let child = &mut self.child;
        let status = poll_until(
            &format!("the exporter to exit (within {deadline:?})"),
            deadline,
            || child.try_wait().expect("try_wait"),
        );
        let end = Instant::now() + deadline;
        let (log, changed) = &*self.log;
        let mut log = log.lock().unwrap();
        while !log.closed {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "stderr still open after the exporter exited"
            );
            log = changed.wait_timeout(log, left).unwrap().0;
        }
        status
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

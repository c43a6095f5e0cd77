//! Network namespaces for tests: named ones built with `ip netns` (a censor between a client and the outside, a
//! country cut off from the world), and a private loopback-only one made with `unshare -n` for multicast tests.
//! Every namespace is the test's own and is removed when the test ends, whatever happens.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Runs a command to its end; `Err` says what failed and what it printed.
pub fn run(args: &[&str]) -> Result<Output, String> {
    let (program, rest) = args.split_first().ok_or("empty command")?;
    let output = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Whether the tests run as root (`ip netns` needs it).
pub fn is_root() -> bool {
    run(&["id", "-u"]).is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Named network namespaces (`ip netns add`), deleted with their `/etc/netns/<name>` files when dropped, even when
/// the test failed.
pub struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    /// One namespace per prefix, named `<prefix><pid><n>`: unique between test processes and between the tests of
    /// one process. Prefixes of a few letters keep names within the kernel's limit.
    pub fn create(prefixes: &[&str]) -> Result<Namespaces, String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        if !is_root() {
            return Err(
                "not running as root: `ip netns` needs root (scripts/test.sh runs as root)".into(),
            );
        }
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut made = Namespaces { names: Vec::new() };
        for prefix in prefixes {
            let name = format!("{prefix}{tag}");
            run(&["ip", "netns", "add", &name])?;
            // recorded at once, so that a later failure still removes it
            made.names.push(name);
        }
        Ok(made)
    }

    /// The name of the `i`th namespace (in the order of the prefixes).
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// A veth pair: interface `a_if` in namespace `a`, `b_if` in namespace `b`.
    pub fn link(&self, a: usize, a_if: &str, b: usize, b_if: &str) -> Result<(), String> {
        run(&[
            "ip",
            "link",
            "add",
            a_if,
            "netns",
            self.name(a),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            self.name(b),
        ])
        .map(drop)
    }

    /// Runs `script` with `sh -ec` inside namespace `i`.
    pub fn sh(&self, i: usize, script: &str) -> Result<Output, String> {
        run(&["ip", "netns", "exec", self.name(i), "sh", "-ec", script])
    }

    /// Writes `/etc/netns/<name>/<file>`, which `ip netns exec` mounts over `/etc/<file>` (hosts, resolv.conf).
    pub fn etc_file(&self, i: usize, file: &str, contents: &str) -> Result<(), String> {
        let dir = Path::new("/etc/netns").join(self.name(i));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join(file), contents).map_err(|e| format!("{file}: {e}"))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdin(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
    }
}

/// Runs `program args` in a fresh network namespace that has only `lo`, with multicast on it (a fresh namespace's
/// `lo` is down and has no multicast route), so nothing it sends can leave the host. `unshare -n` makes the
/// namespace, which disappears with the process, even on failure. `env` is set for the program (how a test knows it
/// runs inside). Killed after `limit`; returns its output.
pub fn run_in_loopback_only_namespace(
    program: &Path,
    args: &[&str],
    env: (&str, &str),
    limit: Duration,
) -> Output {
    let setup = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && \
                 exec \"$0\" \"$@\"";
    let mut child = Command::new("unshare")
        .args(["-n", "--", "sh", "-c", setup])
        .arg(program)
        .args(args)
        .env(env.0, env.1)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run unshare: this test needs util-linux and root (it creates a network namespace)");
    // Read both pipes while waiting, so that a chatty program never blocks on a full one.
    let stdout = child.stdout.take().map(read_all);
    let stderr = child.stderr.take().map(read_all);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait for unshare");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let joined = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
        reader.and_then(|r| r.join().ok()).unwrap_or_default()
    };
    Output {
        status,
        stdout: joined(stdout),
        stderr: joined(stderr),
    }
}

fn read_all(mut stream: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        all
    })
}

/// Runs `f` on a new thread that has entered network namespace `name` (made with `ip netns add`) and returns its
/// result. Sockets created on that thread (and on threads it starts, and by a single-threaded tokio runtime built
/// there) belong to that namespace for their whole life, wherever they are used later.
pub fn in_namespace<T, F>(name: &str, f: F) -> Result<T, String>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let path = Path::new("/var/run/netns").join(name);
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::thread::Builder::new()
        .name(format!("netns {name}"))
        .spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns: {e}"))?;
            Ok(f())
        })
        .map_err(|e| format!("thread: {e}"))?
        .join()
        .map_err(|_| "the thread in the namespace panicked".to_owned())?
}

/// Starts a thread that enters network namespace `name` and then runs `f` there (see [`in_namespace`]); for
/// servers that must keep running while the test goes on. `f` gets `Err` if the namespace cannot be entered.
pub fn spawn_in_namespace<F>(name: &str, f: F) -> Result<std::thread::JoinHandle<()>, String>
where
    F: FnOnce() + Send + 'static,
{
    let path = Path::new("/var/run/netns").join(name);
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("netns {name}"))
        .spawn(move || {
            let entered = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns: {e}"));
            let ok = entered.is_ok();
            let _ = entered_tx.send(entered);
            if ok {
                f();
            }
        })
        .map_err(|e| format!("thread: {e}"))?;
    entered_rx
        .recv()
        .map_err(|_| "the namespace thread ended early".to_owned())??;
    Ok(handle)
}

//! What every child process of the bench shares: it starts in its own process group (a Ctrl-C at
//! the terminal reaches only the bench, which then stops it in order) and is killed when dropped;
//! its stderr is drained by a task (so it never blocks on a full pipe) that keeps the last lines,
//! and an error about it says how it ended and quotes those lines.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::task::JoinHandle;

/// How many stderr lines to keep for an error message.
const TAIL: usize = 8;

/// Start `argv` with `env` added, stdin and stderr piped and stdout as given; `label` names it in
/// the error.
pub fn spawn(label: &str, argv: &[String], env: &[(String, String)], stdout: Stdio) -> anyhow::Result<Child> {
    let (program, args) = argv.split_first().ok_or_else(|| anyhow!("no command given"))?;
    Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run `{program}` ({label})"))
}

/// Hand each line of `stream` to `each`, until EOF or a read error.
pub async fn each_line(stream: impl AsyncRead + Unpin, mut each: impl FnMut(String)) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        each(line);
    }
}

/// A child's stderr, drained by a task that keeps its last lines.
pub struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    /// The draining task; it ends at EOF, so once it has ended a dead child's last lines are in.
    task: Option<JoinHandle<()>>,
}

impl StderrTail {
    /// Drain `stderr`, showing each line to `also` before keeping it.
    pub fn watch(stderr: ChildStderr, mut also: impl FnMut(&str) + Send + 'static) -> Self {
        let lines = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL)));
        let kept = lines.clone();
        let task = tokio::spawn(each_line(stderr, move |line| {
            also(&line);
            let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
            if kept.len() == TAIL {
                kept.pop_front();
            }
            kept.push_back(line);
        }));
        Self { lines, task: Some(task) }
    }

    /// ` (it exited: STATUS)` if `child` exits within a second, then `; its last stderr lines:`
    /// and those lines, if it wrote any.
    pub async fn ending(&mut self, child: &mut Child) -> String {
        let mut out = match tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
            Ok(Ok(status)) => {
                // It exited: let the task read to EOF so that its last lines are quoted.
                if let Some(task) = self.task.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
                }
                format!(" (it exited: {status})")
            }
            _ => String::new(),
        };
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if !lines.is_empty() {
            out.push_str("; its last stderr lines:");
            for line in lines.iter() {
                out.push_str("\n    ");
                out.push_str(line);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ending_of(script: &str) -> String {
        let argv = ["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        let mut child = spawn("test", &argv, &[], Stdio::null()).unwrap();
        let mut tail = StderrTail::watch(child.stderr.take().unwrap(), |_| {});
        tail.ending(&mut child).await
    }

    #[tokio::test]
    async fn an_ending_quotes_the_last_eight_stderr_lines_after_the_exit_status() {
        let ending = ending_of("for i in $(seq 1 10); do echo line$i >&2; done; exit 3").await;
        let lines: Vec<String> = (3..=10).map(|i| format!("\n    line{i}")).collect();
        assert_eq!(ending, format!(" (it exited: exit status: 3); its last stderr lines:{}", lines.concat()));
    }

    #[tokio::test]
    async fn a_silent_child_s_ending_has_no_empty_quote() {
        assert_eq!(ending_of("exit 1").await, " (it exited: exit status: 1)");
    }
}

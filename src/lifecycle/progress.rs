//! Progress of install, upgrade and rollback: an indicatif bar on a terminal, plain
//! numbered lines otherwise (logs, CI, pipes).

use std::io::IsTerminal;

pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    at: usize,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {wide_msg}")
            {
                b.set_style(style);
            }
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Progress { bar, total, at: 0 }
    }

    /// Starts the next step.
    pub fn step(&mut self, msg: &str) {
        self.at += 1;
        match &self.bar {
            Some(b) => {
                b.set_position(self.at as u64 - 1);
                b.set_message(msg.to_string());
            }
            None => println!("[{}/{}] {msg}", self.at, self.total),
        }
    }

    /// A line printed above the bar (or plainly).
    pub fn note(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(format!("  {msg}")),
            None => println!("  {msg}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.set_position(self.total as u64);
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar
            && !b.is_finished()
        {
            b.abandon();
        }
    }
}

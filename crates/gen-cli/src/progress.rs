//! The terminal progress bar: one bar per epoch with loss and throughput, and a summary line.

use std::time::Instant;

use gen_core::train::{EpochMetrics, Observer};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows training progress with indicatif; prints one line per epoch when not on a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
}

impl Progress {
    /// A new observer.
    pub fn new() -> Self {
        Self {
            bar: None,
            start: Instant::now(),
        }
    }
}

impl Observer for Progress {
    fn on_epoch_start(&mut self, epoch: usize, num_epochs: usize, num_steps: usize) {
        let bar = ProgressBar::new(num_steps as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{num_epochs}"));
        self.bar = Some(bar);
    }

    fn on_step(&mut self, _epoch: usize, step: usize, loss: f64, samples_per_sec: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.5}  {samples_per_sec:.0} samples/s"));
        }
    }

    fn on_epoch_end(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let valid = m.valid_loss.map(|v| format!("  valid {v:.5}")).unwrap_or_default();
        eprintln!(
            "epoch {:>3}  train {:.5}{valid}  {:.0} samples/s  {:.1}s  (elapsed {:.0}s)",
            m.epoch,
            m.train_loss,
            m.samples_per_sec,
            m.seconds,
            self.start.elapsed().as_secs_f64()
        );
    }

    fn on_early_stop(&mut self, epoch: usize, best_epoch: usize) {
        eprintln!("early stop after epoch {epoch}: no improvement since epoch {best_epoch}");
    }
}

//! Latency samples and how they are printed.

use std::time::Duration;

pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Samples(samples)
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len()) - 1;
        self.0[i]
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// One line of the report: what, how many per second, p50, p99.
pub fn line(what: &str, count: usize, elapsed: Duration, samples: &Samples) {
    println!(
        "{what:<44} {:>10.0}/s   p50 {:>10}   p99 {:>10}   (n={count})",
        count as f64 / elapsed.as_secs_f64(),
        ms(samples.percentile(0.50)),
        ms(samples.percentile(0.99)),
    );
}

/// The server's CPU time per request over a phase.
pub fn cpu_line(count: usize, cpu: Duration) {
    let per = cpu.as_secs_f64() * 1e6 / count.max(1) as f64;
    println!("{:<44} {per:>10.0} µs of server CPU per request", "");
}

//! Interleaved rounds, so machine noise hits every side of a comparison alike.

use crate::BenchResult;
use crate::stats::median;

/// One side of a comparison: measures one round and returns its value.
pub type Arm<'a> = &'a mut dyn FnMut() -> BenchResult<f64>;

/// Runs every arm once as a warm-up (discarded), then `rounds` rounds in which every arm runs
/// once, rotating which arm goes first. Returns each arm's samples, in arm order.
///
/// # Errors
/// The first error of any arm.
pub fn interleave(rounds: usize, arms: &mut [Arm<'_>]) -> BenchResult<Vec<Vec<f64>>> {
    for arm in arms.iter_mut() {
        arm()?;
    }
    let n = arms.len();
    let mut samples = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            samples[i].push(arms[i]()?);
        }
    }
    Ok(samples)
}

/// The median of each arm's samples.
pub(crate) fn medians(samples: &[Vec<f64>]) -> Vec<f64> {
    samples.iter().map(|s| median(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_which_arm_goes_first() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut a = || {
            order.borrow_mut().push('a');
            Ok(1.0)
        };
        let mut b = || {
            order.borrow_mut().push('b');
            Ok(2.0)
        };
        let samples = interleave(2, &mut [&mut a, &mut b]).expect("no error");
        assert_eq!(samples, vec![vec![1.0, 1.0], vec![2.0, 2.0]]);
        assert_eq!(order.into_inner(), vec!['a', 'b', 'a', 'b', 'b', 'a']);
    }
}

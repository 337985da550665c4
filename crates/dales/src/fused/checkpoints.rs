//! The controller states an ARUN sequence keeps for its backward through time, on the host
//! and on the GPU alike: every state `g_0 … g_T` when they fit the memory budget, otherwise
//! every `C`-th (`C = ⌈√T⌉`), the others recomputed one segment of `C` at a time during the
//! backward from the state that starts it: one extra controller forward for `O(√T)` memory.

/// The steps between kept states of `len` floats each over a sequence of `steps`: all of them
/// (`steps`) when the `steps + 1` states fit in `budget` bytes, else `⌈√T⌉`.
pub(crate) fn segment_length(steps: usize, len: usize, budget: usize) -> usize {
    let bytes = (steps + 1) * len * std::mem::size_of::<f32>();
    if bytes <= budget {
        steps.max(1)
    } else {
        (steps as f64).sqrt().ceil().max(1.0) as usize
    }
}

/// The states `S` of a sequence of `steps` steps kept in its forward, and the segment of them
/// its backward has loaded.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoints<S> {
    steps: usize,
    segment: usize,
    /// Kept states `g_t`, `t = 0..=T` (every step, or every `segment`-th).
    kept: Vec<Option<S>>,
    /// The backward's states `g_base..=g_end` of the current segment.
    states: Vec<S>,
    base: usize,
}

impl<S> Checkpoints<S> {
    /// Room for a sequence of `steps` states of `len` floats each under `budget` bytes.
    pub(crate) fn new(steps: usize, len: usize, budget: usize) -> Self {
        Checkpoints {
            steps,
            segment: segment_length(steps, len, budget),
            kept: Vec::new(),
            states: Vec::new(),
            base: 0,
        }
    }

    /// Start a forward (keeping states when `save`).
    pub(crate) fn start(&mut self, save: bool) {
        self.kept = (0..if save { self.steps + 1 } else { 0 })
            .map(|_| None)
            .collect();
    }

    fn keeps(&self, t: usize) -> bool {
        !self.kept.is_empty() && (t.is_multiple_of(self.segment) || self.segment == self.steps)
    }

    /// The forward is done with state `g_t`: it is kept if it starts a segment (or every state
    /// is kept), else handed back for reuse.
    pub(crate) fn offer(&mut self, t: usize, g: S) -> Option<S> {
        if self.keeps(t) {
            self.kept[t] = Some(g);
            None
        } else {
            Some(g)
        }
    }

    /// Make `g_t` available to the backward at step `t` (called in order `T..=1`): load the
    /// segment ending at `t` when `t` is not in the one loaded, taking the kept states and
    /// recomputing the others in order with `recompute(t, &g_{t−1})`. States the backward no
    /// longer needs go to `release`.
    pub(crate) fn load(
        &mut self,
        end: usize,
        mut recompute: impl FnMut(usize, &S) -> S,
        mut release: impl FnMut(S),
    ) {
        if !self.states.is_empty() && end > self.base {
            return;
        }
        // The last segment's first state is this one's last.
        let mut old = std::mem::take(&mut self.states);
        let mut reuse = (!old.is_empty() && self.base == end).then(|| old.swap_remove(0));
        old.into_iter().for_each(&mut release);
        let base = (end - 1) / self.segment * self.segment;
        self.base = base;
        let first = self.kept[base]
            .take()
            .expect("every segment starts at a kept state");
        self.states.push(first);
        for t in base + 1..=end {
            let kept = if t == end { reuse.take() } else { None };
            let g = match kept.or_else(|| self.kept[t].take()) {
                Some(g) => g,
                None => recompute(t, &self.states[self.states.len() - 1]),
            };
            self.states.push(g);
        }
    }

    /// `g_t` of the loaded segment.
    pub(crate) fn state(&self, t: usize) -> &S {
        &self.states[t - self.base]
    }

    /// Hand every loaded state to `release` (the backward has reached `t = 1`).
    pub(crate) fn finish(&mut self, release: impl FnMut(S)) {
        self.states.drain(..).for_each(release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recomputed states equal the forward's at every step, with every budget.
    #[test]
    fn backward_sees_every_forward_state() {
        for steps in [1, 2, 7, 50] {
            for budget in [0, 4 * 8 * (steps + 1)] {
                let mut c = Checkpoints::<u64>::new(steps, 8, budget);
                c.start(true);
                // g_t = 3 t + 1: g_t from g_{t−1} is g + 3.
                for t in 0..=steps {
                    assert_eq!(c.offer(t, 3 * t as u64 + 1).is_none(), c.keeps(t));
                }
                let mut recomputed = 0;
                for t in (1..=steps).rev() {
                    c.load(
                        t,
                        |_, prev| {
                            recomputed += 1;
                            prev + 3
                        },
                        drop,
                    );
                    assert_eq!(
                        *c.state(t),
                        3 * t as u64 + 1,
                        "T {steps}, budget {budget}, t {t}"
                    );
                    assert_eq!(*c.state(t - 1), 3 * (t - 1) as u64 + 1);
                }
                c.finish(drop);
                if budget == 0 && steps > 2 {
                    assert!(recomputed > 0, "T {steps}: nothing recomputed");
                } else if budget > 0 {
                    assert_eq!(recomputed, 0);
                }
            }
        }
    }
}

//! Maximum flow / minimum s–t cut on a small directed graph (Dinic's algorithm: BFS levels, then
//! blocking flows by DFS). Co-Mixup's graphs are tiny (one node per block, at most 16 × 16), so a
//! plain adjacency-list implementation is fast enough and easy to check.
use std::collections::VecDeque;

/// Residual capacities below this are treated as saturated (float round-off).
const EPS: f64 = 1e-12;

/// One directed edge; its reverse edge sits at `rev` in `to`'s list.
#[derive(Debug, Clone)]
struct Edge {
    to: usize,
    cap: f64,
    rev: usize,
}

/// A flow network with nodes `0..n`.
#[derive(Debug, Clone)]
pub struct FlowGraph {
    adj: Vec<Vec<Edge>>,
}

impl FlowGraph {
    /// An empty network with `n` nodes.
    pub fn new(n: usize) -> Self {
        FlowGraph {
            adj: vec![Vec::new(); n],
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.adj.len()
    }

    /// Whether the network has no node.
    pub fn is_empty(&self) -> bool {
        self.adj.is_empty()
    }

    /// Adds an edge `a → b` of capacity `cap` and `b → a` of capacity `rev_cap`; negative
    /// capacities count as 0.
    pub fn add_edge(&mut self, a: usize, b: usize, cap: f64, rev_cap: f64) {
        let (ia, ib) = (self.adj[a].len(), self.adj[b].len() + usize::from(a == b));
        self.adj[a].push(Edge {
            to: b,
            cap: cap.max(0.0),
            rev: ib,
        });
        self.adj[b].push(Edge {
            to: a,
            cap: rev_cap.max(0.0),
            rev: ia,
        });
    }

    fn levels(&self, s: usize) -> Vec<Option<usize>> {
        let mut level = vec![None; self.len()];
        level[s] = Some(0);
        let mut queue = VecDeque::from([s]);
        while let Some(u) = queue.pop_front() {
            let next = level[u].map_or(0, |l| l + 1);
            for e in &self.adj[u] {
                if e.cap > EPS && level[e.to].is_none() {
                    level[e.to] = Some(next);
                    queue.push_back(e.to);
                }
            }
        }
        level
    }

    fn push(
        &mut self,
        u: usize,
        t: usize,
        limit: f64,
        level: &[Option<usize>],
        it: &mut [usize],
    ) -> f64 {
        if u == t {
            return limit;
        }
        while it[u] < self.adj[u].len() {
            let (to, cap, rev) = {
                let e = &self.adj[u][it[u]];
                (e.to, e.cap, e.rev)
            };
            let deeper = matches!((level[u], level[to]), (Some(a), Some(b)) if b == a + 1);
            if cap > EPS && deeper {
                let f = self.push(to, t, limit.min(cap), level, it);
                if f > EPS {
                    self.adj[u][it[u]].cap -= f;
                    self.adj[to][rev].cap += f;
                    return f;
                }
            }
            it[u] += 1;
        }
        0.0
    }

    /// Sends the maximum flow from `s` to `t` and returns its value; the network keeps the
    /// residual capacities (see [`FlowGraph::source_side`]).
    pub fn max_flow(&mut self, s: usize, t: usize) -> f64 {
        let mut total = 0.0;
        if s == t {
            return total;
        }
        loop {
            let level = self.levels(s);
            if level[t].is_none() {
                return total;
            }
            let mut it = vec![0; self.len()];
            loop {
                let f = self.push(s, t, f64::INFINITY, &level, &mut it);
                if f <= EPS {
                    break;
                }
                total += f;
            }
        }
    }

    /// After [`FlowGraph::max_flow`]: which nodes are reachable from `s` in the residual
    /// network, i.e. the source side of a minimum cut.
    pub fn source_side(&self, s: usize) -> Vec<bool> {
        self.levels(s).iter().map(Option::is_some).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deda_core::{rng_for, Stream};
    use rand::Rng;

    /// The capacity of the cheapest s–t cut by enumerating every node subset.
    fn brute_min_cut(n: usize, edges: &[(usize, usize, f64)], s: usize, t: usize) -> f64 {
        let mut best = f64::INFINITY;
        for mask in 0u32..(1 << n) {
            let in_s = |v: usize| mask & (1 << v) != 0;
            if !in_s(s) || in_s(t) {
                continue;
            }
            let cut: f64 = edges
                .iter()
                .filter(|(a, b, _)| in_s(*a) && !in_s(*b))
                .map(|e| e.2)
                .sum();
            best = best.min(cut);
        }
        best
    }

    #[test]
    fn max_flow_equals_min_cut_on_random_graphs() {
        let mut rng = rng_for(7, Stream::Mix, &[0]);
        for trial in 0..60 {
            let n = rng.random_range(2..9);
            let mut g = FlowGraph::new(n);
            let mut edges = Vec::new();
            for _ in 0..rng.random_range(0..3 * n) {
                let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
                let c = rng.random_range(0.0..5.0);
                g.add_edge(a, b, c, 0.0);
                edges.push((a, b, c));
            }
            let flow = g.max_flow(0, n - 1);
            let cut = brute_min_cut(n, &edges, 0, n - 1);
            assert!((flow - cut).abs() < 1e-9, "trial {trial}: {flow} vs {cut}");
            let side = g.source_side(0);
            let side_cut: f64 = edges
                .iter()
                .filter(|(a, b, _)| side[*a] && !side[*b])
                .map(|e| e.2)
                .sum();
            assert!(side[0] && !side[n - 1]);
            assert!((side_cut - cut).abs() < 1e-9, "trial {trial}");
        }
    }
}

//! The decision-tree scorer: a tree fitted by linfa-trees, exported to plain nodes. Every node holds the smoothed
//! log-odds of reuse among the training rows that reach it, so a leaf gives the score and the changes along an
//! object's path give its feature contributions.

use linfa::prelude::*;
use linfa_trees::{DecisionTree, SplitQuality, TreeNode};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// One node. `left == 0` marks a leaf (the root, index 0, is never a child).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Split feature (index into the feature schema); rows with `x[feature] <= threshold` go left.
    pub feature: usize,
    pub threshold: f64,
    pub left: u32,
    pub right: u32,
    /// `ln((reused + 1) / (unused + 1))` over the training rows reaching this node.
    pub log_odds: f64,
}

impl Node {
    pub fn is_leaf(&self) -> bool {
        self.left == 0
    }
}

/// Hyper-parameters of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TreeConfig {
    pub max_depth: usize,
    /// Fewest training rows in a leaf.
    pub min_leaf_rows: f32,
    /// Most rows the tree is fitted on (linfa-trees scans every row per node and feature, so it is subsampled).
    pub max_fit_rows: usize,
}

impl Default for TreeConfig {
    fn default() -> Self {
        Self {
            max_depth: 7,
            min_leaf_rows: 50.0,
            max_fit_rows: 40_000,
        }
    }
}

/// Fits a tree on `x` (rows x features) and `y` (reused), and fills every node's log-odds from the same rows.
pub fn fit(x: Array2<f64>, y: Array1<bool>, config: &TreeConfig) -> Result<Vec<Node>, ModelError> {
    let dataset = Dataset::new(x, y);
    let fitted = DecisionTree::params()
        .split_quality(SplitQuality::Gini)
        .max_depth(Some(config.max_depth))
        .min_weight_leaf(config.min_leaf_rows)
        .fit(&dataset)
        .map_err(|e| ModelError::Training(format!("decision tree did not fit: {e}")))?;
    let mut nodes = Vec::new();
    export(fitted.root_node(), &mut nodes);
    let mut counts = vec![(0u64, 0u64); nodes.len()];
    for (row, &reused) in dataset.records().rows().into_iter().zip(dataset.targets().iter()) {
        let values: Vec<f64> = row.to_vec();
        walk(&nodes, &values, |i| {
            let c = &mut counts[i];
            if reused {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        });
    }
    for (node, (reused, unused)) in nodes.iter_mut().zip(counts) {
        node.log_odds = ((reused as f64 + 1.0) / (unused as f64 + 1.0)).ln();
    }
    Ok(nodes)
}

/// Appends `node` and its subtree in pre-order; returns its index.
fn export(node: &TreeNode<f64, bool>, out: &mut Vec<Node>) -> u32 {
    let index = out.len() as u32;
    let (feature, threshold, _) = node.split();
    out.push(Node {
        feature,
        threshold,
        left: 0,
        right: 0,
        log_odds: 0.0,
    });
    let children = node.children();
    if let (false, Some(Some(left)), Some(Some(right))) = (node.is_leaf(), children.first(), children.get(1)) {
        let l = export(left, out);
        let r = export(right, out);
        out[index as usize].left = l;
        out[index as usize].right = r;
    }
    index
}

/// Visits the nodes on `values`' path, root first; returns the leaf's index.
pub fn walk(nodes: &[Node], values: &[f64], mut visit: impl FnMut(usize)) -> usize {
    let mut i = 0usize;
    loop {
        visit(i);
        let node = &nodes[i];
        if node.is_leaf() {
            return i;
        }
        i = if values[node.feature] <= node.threshold {
            node.left as usize
        } else {
            node.right as usize
        };
    }
}

/// Checks the structure: indices in range and pointing forward (so every walk ends), features in range, finite
/// numbers.
pub fn validate(nodes: &[Node], feature_count: usize) -> Result<(), String> {
    if nodes.is_empty() {
        return Err("the tree has no nodes".into());
    }
    for (i, n) in nodes.iter().enumerate() {
        if !n.log_odds.is_finite() || !n.threshold.is_finite() {
            return Err(format!("node {i} has a non-finite value"));
        }
        if n.is_leaf() {
            continue;
        }
        let forward = |c: u32| (c as usize) > i && (c as usize) < nodes.len();
        if !forward(n.left) || !forward(n.right) || n.feature >= feature_count {
            return Err(format!("node {i} points outside the tree"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_separates_what_one_feature_decides() {
        // Reused exactly when feature 1 exceeds 0.5; feature 0 is noise.
        let n = 2_000;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| {
            if j == 0 {
                (i * 7919 % 1000) as f64 / 1000.0
            } else {
                (i % 100) as f64 / 100.0
            }
        });
        let y: Array1<bool> = (0..n).map(|i| (i % 100) as f64 / 100.0 > 0.5).collect();
        let nodes = fit(x, y, &TreeConfig::default()).expect("fits");
        validate(&nodes, 2).expect("valid");
        let low = walk(&nodes, &[0.3, 0.2], |_| {});
        let high = walk(&nodes, &[0.3, 0.9], |_| {});
        assert!(nodes[low].log_odds < -3.0, "{}", nodes[low].log_odds);
        assert!(nodes[high].log_odds > 3.0, "{}", nodes[high].log_odds);
    }

    #[test]
    fn malformed_trees_are_refused() {
        let leaf = Node {
            feature: 0,
            threshold: 0.0,
            left: 0,
            right: 0,
            log_odds: 0.0,
        };
        assert!(validate(&[], 3).is_err());
        assert!(validate(std::slice::from_ref(&leaf), 3).is_ok());
        // A child index that does not point forward could loop forever.
        let back = Node {
            left: 1,
            right: 0,
            ..leaf.clone()
        };
        assert!(validate(&[back.clone(), back], 3).is_err());
        let bad_feature = Node {
            feature: 9,
            left: 1,
            right: 2,
            ..leaf.clone()
        };
        assert!(validate(&[bad_feature, leaf.clone(), leaf], 3).is_err());
    }
}

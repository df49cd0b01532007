//! Bounded groups of work: whole items (series, symbols) packed in order so
//! that each group holds about a given number of rows, which keeps a
//! command's memory bounded whatever the lake's size.

/// Consecutive items packed into groups of at most `max_rows` rows; an item
/// larger than that is a group of its own.
pub fn row_groups<T>(items: impl IntoIterator<Item = (T, usize)>, max_rows: usize) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    let mut rows = 0;
    for (item, n) in items {
        if groups.is_empty() || (rows + n > max_rows && rows > 0) {
            groups.push(Vec::new());
            rows = 0;
        }
        rows += n;
        groups.last_mut().expect("a group").push(item);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_pack_consecutive_items_up_to_the_row_budget() {
        let packed = row_groups([("A", 60), ("B", 60), ("C", 30), ("D", 200)], 100);
        assert_eq!(packed, [vec!["A"], vec!["B", "C"], vec!["D"]]);
        assert!(row_groups(Vec::<(u8, usize)>::new(), 10).is_empty());
    }
}

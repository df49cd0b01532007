/// How far a long step is (a fetch, an import, a features build), for
/// whatever displays it: a progress bar, or nothing (`()`).
pub trait Progress: Send + Sync {
    /// `done` of `total` items (symbols, files, series); `rows` so far when known.
    fn advance(&self, done: usize, total: usize, rows: Option<usize>);

    /// The step is over; a display clears itself.
    fn finish(&self) {}
}

impl Progress for () {
    fn advance(&self, _: usize, _: usize, _: Option<usize>) {}
}

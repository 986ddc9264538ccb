//! Outputs rendered on every core: cut into parts (the head of a report, the results of some of
//! its objects), the parts joined into pieces of about [`OBJECTS_PER_PIECE`] objects, the pieces
//! written in order.

use crate::cli::parallel::write_on_every_core;
use std::io::{self, Write};

/// About how many objects' results are rendered together, on one core: enough that handing a
/// piece over costs little beside rendering it.
pub(super) const OBJECTS_PER_PIECE: usize = 256;

/// A part of an output: any core may render it, into a buffer written in its turn.
pub(super) trait Part: Sync {
    /// How many objects' results it renders; parts that render none (a report's head) weigh
    /// nothing.
    fn objects(&self) -> usize;

    fn render(&self, buffer: &mut Vec<u8>) -> io::Result<()>;
}

/// Writes `parts` to `out` in order, rendered on every core.
pub(super) fn write_parts<P: Part>(parts: &[P], out: &mut dyn Write) -> io::Result<()> {
    write_on_every_core(&cut(parts), out, |piece, buffer| {
        piece.iter().try_for_each(|part| part.render(buffer))
    })
}

/// `parts` cut into runs of about [`OBJECTS_PER_PIECE`] objects: a report may hold one object, or
/// thousands, and thousands of small ones are no cheaper to hand over one by one.
fn cut<P: Part>(parts: &[P]) -> Vec<&[P]> {
    let mut pieces = Vec::new();
    let (mut start, mut objects) = (0, 0);
    for (index, part) in parts.iter().enumerate() {
        objects += part.objects();
        if objects >= OBJECTS_PER_PIECE {
            pieces.push(&parts[start..=index]);
            (start, objects) = (index + 1, 0);
        }
    }
    if start < parts.len() {
        pieces.push(&parts[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A part of `0` objects is a head.
    struct Weighing(usize);

    impl Part for Weighing {
        fn objects(&self) -> usize {
            self.0
        }

        fn render(&self, buffer: &mut Vec<u8>) -> io::Result<()> {
            writeln!(buffer, "{}", self.0)
        }
    }

    fn weights(pieces: &[&[Weighing]]) -> Vec<Vec<usize>> {
        pieces.iter().map(|piece| piece.iter().map(|part| part.0).collect()).collect()
    }

    #[test]
    fn small_parts_join_and_large_ones_stand_alone_every_part_kept_in_order() {
        let parts: Vec<Weighing> = [0, 100, 0, 100, 0, 100, 300, 0, 5].map(Weighing).into();
        assert_eq!(weights(&cut(&parts)), [vec![0, 100, 0, 100, 0, 100], vec![300], vec![0, 5]]);
        assert!(cut::<Weighing>(&[]).is_empty());
    }

    #[test]
    fn parts_are_written_in_order() {
        let parts: Vec<Weighing> = (0..2_000).map(|n| Weighing(n % 300)).collect();
        let mut out = Vec::new();
        write_parts(&parts, &mut out).unwrap();
        let expected: String = parts.iter().map(|part| format!("{}\n", part.0)).collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

//! Bit-level writer and reader over a byte vector, most significant bit first.

/// Appends bits to a byte vector.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free in the last byte (0 when a new byte is needed).
    free: u8,
}

impl BitWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a zero byte. The vector grows by a quarter at a time, not doubling: open chunks
    /// live long in memory, and doubling would leave up to half of each unused.
    fn new_byte(&mut self) {
        if self.bytes.len() == self.bytes.capacity() {
            self.bytes.reserve_exact((self.bytes.len() / 4).max(16));
        }
        self.bytes.push(0);
        self.free = 8;
    }

    pub fn write_bit(&mut self, bit: bool) {
        if self.free == 0 {
            self.new_byte();
        }
        self.free -= 1;
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 1 << self.free;
        }
    }

    /// Writes the low `n` bits of `v` (n ≤ 64), most significant first.
    pub fn write_bits(&mut self, v: u64, n: u8) {
        debug_assert!(n <= 64);
        let mut n = n;
        while n > 0 {
            if self.free == 0 {
                self.new_byte();
            }
            let take = n.min(self.free);
            let shift = n - take;
            // `take` ≤ 8: one byte's worth at a time.
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            self.free -= take;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= chunk << self.free;
            n -= take;
        }
    }

    /// Bits written so far.
    pub fn bit_len(&self) -> usize {
        self.bytes.len() * 8 - self.free as usize
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads bits written by [`BitWriter`].
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    pub fn read_bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let bit = byte >> (7 - (self.pos % 8)) & 1 == 1;
        self.pos += 1;
        Some(bit)
    }

    /// Reads `n` bits (n ≤ 64) as the low bits of the result.
    pub fn read_bits(&mut self, n: u8) -> Option<u64> {
        let mut v = 0u64;
        let mut n = n;
        while n > 0 {
            let byte = *self.bytes.get(self.pos / 8)?;
            let offset = (self.pos % 8) as u8;
            let avail = 8 - offset;
            let take = n.min(avail);
            let bits = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            v = (v << take) | bits as u64;
            self.pos += take as usize;
            n -= take;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_mixed_widths() {
        let items: &[(u64, u8)] = &[
            (1, 1),
            (0, 1),
            (0b1011, 4),
            (u64::MAX, 64),
            (0, 64),
            (12345, 17),
            (7, 3),
            (1 << 40, 41),
        ];
        let mut w = BitWriter::new();
        for (v, n) in items {
            w.write_bits(*v, *n);
        }
        assert_eq!(
            w.bit_len(),
            items.iter().map(|(_, n)| *n as usize).sum::<usize>()
        );
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes);
        for (v, n) in items {
            let mask = if *n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            assert_eq!(r.read_bits(*n), Some(v & mask), "{v} in {n} bits");
        }
    }

    #[test]
    fn reading_past_the_end_is_none() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(8), Some(0xff));
        assert_eq!(r.read_bit(), None);
    }
}

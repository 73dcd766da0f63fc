//! Human sizes in config files: `4194304`, `"4MiB"`, `"100MB"`, `"512k"`.

/// Parse a byte size. Binary and decimal suffixes are both read as powers of 1024, as operators expect.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("`{text}` is not a size (try \"4MiB\")"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` in `{text}` (use B, KiB, MiB or GiB)")),
    };
    Ok((value * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn parses_sizes() {
        for (input, want) in
            [("10", Ok(10)), ("4MiB", Ok(4 << 20)), ("100MB", Ok(100 << 20)), ("1.5k", Ok(1536))]
        {
            assert_eq!(parse_size(input), want.map_err(|_: ()| String::new()), "{input}");
        }
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("MB").is_err());
    }
}

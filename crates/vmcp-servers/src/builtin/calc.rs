//! A safe arithmetic evaluator for the `utils` built-in: numbers (decimals, exponents),
//! `+ - * /`, unary signs and parentheses. Bounded in length and nesting; no names, no calls.

const MAX_LEN: usize = 4096;
const MAX_DEPTH: usize = 64;

/// Evaluate `expr`.
pub fn evaluate(expr: &str) -> Result<f64, String> {
    if expr.len() > MAX_LEN {
        return Err(format!("expression longer than {MAX_LEN} characters"));
    }
    let mut p = Parser { s: expr.as_bytes(), pos: 0, depth: 0 };
    let v = p.sum()?;
    p.skip_ws();
    if p.pos < p.s.len() {
        return Err(format!("unexpected `{}` at position {}", p.s[p.pos] as char, p.pos + 1));
    }
    if !v.is_finite() {
        return Err("the result is not a finite number".into());
    }
    Ok(v)
}

/// A number as people write it: integers without `.0`, others in shortest form.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut v = self.product()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let rhs = self.product()?;
            v = if op == b'+' { v + rhs } else { v - rhs };
        }
        Ok(v)
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.pos += 1;
            let rhs = self.unary()?;
            if op == b'/' && rhs == 0.0 {
                return Err("division by zero".into());
            }
            v = if op == b'*' { v * rhs } else { v / rhs };
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<f64, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let v = match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                self.unary().map(|v| -v)
            }
            Some(b'+') => {
                self.pos += 1;
                self.unary()
            }
            Some(b'(') => {
                self.pos += 1;
                let v = self.sum()?;
                if self.peek() != Some(b')') {
                    return Err(format!("missing `)` at position {}", self.pos + 1));
                }
                self.pos += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => self.number(),
            Some(c) => Err(format!("unexpected `{}` at position {}", c as char, self.pos + 1)),
            None => Err("unexpected end of expression".into()),
        };
        self.depth -= 1;
        v
    }

    fn number(&mut self) -> Result<f64, String> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            while p.s.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
        };
        digits(self);
        if self.s.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            digits(self);
        }
        if matches!(self.s.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.s.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            digits(self);
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).map_err(|e| e.to_string())?;
        text.parse().map_err(|_| format!("bad number `{text}` at position {}", start + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_arithmetic() {
        let cases = [
            ("1 + 2 * 3", Ok("7")),
            ("(1 + 2) * 3", Ok("9")),
            ("10 / 4", Ok("2.5")),
            ("-3 - -2", Ok("-1")),
            ("0.1 + 0.2", Ok("0.30000000000000004")),
            ("2e3 / .5", Ok("4000")),
            ("8 / 2 / 2", Ok("2")),
            ("1 / 0", Err(())),
            ("2 +", Err(())),
            ("(1 + 2", Err(())),
            ("1 + 2)", Err(())),
            ("abs(1)", Err(())),
            ("1e999", Err(())),
            ("", Err(())),
        ];
        for (expr, want) in cases {
            let got = evaluate(expr).map(format_number).map_err(|_| ());
            assert_eq!(got.as_deref().map_err(|_| ()), want, "{expr}");
        }
        assert!(evaluate(&"(".repeat(100)).unwrap_err().contains("nested"));
        assert!(evaluate(&"1+".repeat(3000)).is_err());
    }
}

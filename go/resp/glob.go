// glob.go -- Redis's glob-style patterns (KEYS, SCAN MATCH, CONFIG GET):
// '*' any run of bytes, '?' one byte, "[abc]", "[^a-z]" classes, '\'
// escapes.  Ported from Redis's stringmatchlen (util.c) because no
// maintained Go package matches its dialect: path.Match stops '*' at '/',
// tidwall/match has no classes.  Matching is byte-wise, case-sensitive.
package resp

// globMatch reports whether s matches pattern p.
func globMatch(p, s []byte) bool { return globAt(p, s, 0) }

// globAt is stringmatchlen; depth bounds the recursion of nested stars.
func globAt(p, s []byte, depth int) bool {
	if depth > 1000 {
		return false
	}
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globAt(p[1:], s[i:], depth+1) {
					return true
				}
			}
			return false
		case '?':
			if len(s) == 0 {
				return false
			}
			s = s[1:]
		case '[':
			if len(s) == 0 {
				return false
			}
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for {
				if len(p) == 0 {
					break // unterminated class: Redis treats the end as ']'
				}
				if p[0] == '\\' && len(p) >= 2 {
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
				} else if p[0] == ']' {
					break
				} else if len(p) >= 3 && p[1] == '-' {
					lo, hi := p[0], p[2]
					if lo > hi {
						lo, hi = hi, lo
					}
					if s[0] >= lo && s[0] <= hi {
						match = true
					}
					p = p[2:]
				} else if p[0] == s[0] {
					match = true
				}
				p = p[1:]
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
			if len(p) == 0 {
				return len(s) == 0
			}
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if len(s) == 0 || p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}

// literalPrefix is the bytes every key matching p starts with: the
// pattern up to its first special character, so a scan can seek to it.
func literalPrefix(p []byte) []byte {
	var out []byte
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[':
			return out
		case '\\':
			if i+1 < len(p) {
				i++
			}
		}
		out = append(out, p[i])
	}
	return out
}

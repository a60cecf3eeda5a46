package events

// validJSON reports whether raw is one JSON value, with nothing but white space around
// it, exactly as json.Valid does: the same grammar, strings that may hold any byte
// from 0x20 up (json.Valid does not check UTF-8), and at most 10,000 nested objects
// and arrays (encoding/json's limit). It is a plain loop rather than encoding/json's
// state machine of a function call per byte, which was most of what reading an event's
// envelope cost. FuzzValidJSON holds it to json.Valid.
func validJSON(raw []byte) bool {
	v := jsonValidator{keyScanner{b: raw}}
	v.space()
	if !v.value(0) {
		return false
	}
	v.space()
	return v.i == len(v.b)
}

// maxJSONDepth is encoding/json's limit on nested objects and arrays.
const maxJSONDepth = 10000

// jsonValidator walks the bytes as keyScanner does (its space is keyScanner's), but
// checks every byte rather than trusting them to be JSON.
type jsonValidator struct{ keyScanner }

// value checks the value at v.i, depth objects and arrays deep, and moves past it.
func (v *jsonValidator) value(depth int) bool {
	if v.i >= len(v.b) {
		return false
	}
	switch c := v.b[v.i]; {
	case c == '{':
		return v.object(depth + 1)
	case c == '[':
		return v.array(depth + 1)
	case c == '"':
		return v.str()
	case c == '-' || '0' <= c && c <= '9':
		return v.number()
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	}
	return false
}

func (v *jsonValidator) object(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	if v.opened('}') {
		return true
	}
	for {
		if v.i >= len(v.b) || v.b[v.i] != '"' || !v.str() {
			return false
		}
		v.space()
		if v.i >= len(v.b) || v.b[v.i] != ':' {
			return false
		}
		v.i++
		v.space()
		if !v.value(depth) {
			return false
		}
		if ended, ok := v.afterMember('}'); !ok || ended {
			return ok
		}
	}
}

func (v *jsonValidator) array(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	if v.opened(']') {
		return true
	}
	for {
		if !v.value(depth) {
			return false
		}
		if ended, ok := v.afterMember(']'); !ok || ended {
			return ok
		}
	}
}

// opened moves past the '{' or '[' at v.i and the space after it, and past closing too
// when it comes at once, reporting whether it did: the object or array is empty.
func (v *jsonValidator) opened(closing byte) (empty bool) {
	v.i++
	v.space()
	if v.i < len(v.b) && v.b[v.i] == closing {
		v.i++
		return true
	}
	return false
}

// afterMember moves past what follows a member or element: a ',' and the space after
// it, or closing, which ends the object or array. ok is false for anything else.
func (v *jsonValidator) afterMember(closing byte) (ended, ok bool) {
	v.space()
	if v.i >= len(v.b) {
		return false, false
	}
	switch v.b[v.i] {
	case ',':
		v.i++
		v.space()
		return false, true
	case closing:
		v.i++
		return true, true
	}
	return false, false
}

// str checks the string at v.i ('"') and moves past its closing quote.
func (v *jsonValidator) str() bool {
	for v.i++; v.i < len(v.b); v.i++ {
		switch c := v.b[v.i]; {
		case c == '"':
			v.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			v.i++
			if v.i >= len(v.b) {
				return false
			}
			switch v.b[v.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if v.i+4 >= len(v.b) {
					return false
				}
				for _, h := range v.b[v.i+1 : v.i+5] {
					if !isHexDigit(h) {
						return false
					}
				}
				v.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at v.i and moves past it.
func (v *jsonValidator) number() bool {
	if v.b[v.i] == '-' {
		v.i++
	}
	switch {
	case v.i >= len(v.b):
		return false
	case v.b[v.i] == '0':
		v.i++
	case '1' <= v.b[v.i] && v.b[v.i] <= '9':
		v.digits()
	default:
		return false
	}
	if v.i < len(v.b) && v.b[v.i] == '.' {
		v.i++
		if !v.digits() {
			return false
		}
	}
	if v.i < len(v.b) && (v.b[v.i] == 'e' || v.b[v.i] == 'E') {
		v.i++
		if v.i < len(v.b) && (v.b[v.i] == '+' || v.b[v.i] == '-') {
			v.i++
		}
		if !v.digits() {
			return false
		}
	}
	return true
}

// digits moves past a run of digits and reports whether there was one.
func (v *jsonValidator) digits() bool {
	start := v.i
	for v.i < len(v.b) && '0' <= v.b[v.i] && v.b[v.i] <= '9' {
		v.i++
	}
	return v.i > start
}

func (v *jsonValidator) literal(word string) bool {
	if len(v.b)-v.i < len(word) || string(v.b[v.i:v.i+len(word)]) != word {
		return false
	}
	v.i += len(word)
	return true
}

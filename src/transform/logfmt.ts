// logfmt (`level=info msg="request served" status=200 cached`), as written by go-logfmt, logrus's
// text formatter, Heroku and others. Hand-written: the `logfmt` npm package has had no release since
// 2017 and is a stream/HTTP toolkit more than a parser; this is one loop over char codes.
//
// Grammar, leniently read:
//   line  = *space pair *( 1*space (pair / key) ) *space
//   pair  = key "=" [ value ]            ; `k=` is the empty string
//   key   = 1*keychar                    ; ASCII letters, digits, `_ . - @ / $ #`, or any non-ASCII
//   value = quoted / 1*(any char but space and `"`)   ; `=` is allowed in a bare value
//   quoted = `"` *(char / escape) `"`   ; \" \\ \/ \b \f \n \r \t \uXXXX; other escapes kept as is
// where space is any character up to U+0020 (so tabs and newlines separate pairs too). A bare key
// (`cached`) is a flag: true.
//
// When a message is logfmt, rather than prose that happens to hold an `=`:
//   - the first token is a key=value pair: real logfmt begins with `ts=`/`time=`/`level=`/`msg=`,
//     prose begins with a word ("user logged in at 10:00", "Retrying: attempt=3" are not logfmt);
//   - every token parses (an unterminated quote, a `"` inside a bare value, or a key character such
//     as `:`, `,` or `(` makes the whole message not logfmt; so does a URL with a query string);
//   - pairs outnumber bare keys ("a=b and then some words" is prose).
// A message that is a single pair (`status=ok`) is logfmt: a judgment call, made because a lone
// pair is how minimal loggers write one field, and the fields cost nothing when wrong (they land
// under the merge key; the message is kept as is).

/**
 * A logfmt line's fields in line order: string values, `true` for a bare key; the last duplicate
 * wins. A Map: any key (`__proto__`, `constructor`) is plain data, and V8 fills a Map about ten
 * times faster than a null-prototype object (which it keeps in dictionary mode).
 */
export type LogfmtFields = Map<string, string | true>;

/** The fields of a logfmt message, or undefined when the message is not logfmt. Never throws. */
export function parseLogfmt(message: string): LogfmtFields | undefined {
  const n = message.length;
  const fields: LogfmtFields = new Map();
  let pairs = 0;
  let bare = 0;
  let i = 0;
  for (;;) {
    while (i < n && message.charCodeAt(i) <= 0x20) i++;
    if (i === n) break;
    const keyStart = i;
    while (i < n && isKeyChar(message.charCodeAt(i))) i++;
    if (i === keyStart) return undefined;
    const key = message.slice(keyStart, i);
    if (i === n || message.charCodeAt(i) <= 0x20) {
      // Prose stops here, at its first word.
      if (pairs === 0) return undefined;
      fields.set(key, true);
      bare++;
      continue;
    }
    if (message.charCodeAt(i) !== 0x3d) return undefined;
    i++;
    if (i < n && message.charCodeAt(i) === 0x22) {
      const start = i + 1;
      let q = start;
      let escaped = false;
      for (; q < n; q++) {
        const c = message.charCodeAt(q);
        if (c === 0x22) break;
        if (c === 0x5c) {
          escaped = true;
          q++;
        }
      }
      if (q >= n) return undefined;
      fields.set(key, escaped ? unquote(message, start, q) : message.slice(start, q));
      i = q + 1;
      if (i < n && message.charCodeAt(i) > 0x20) return undefined;
    } else {
      const start = i;
      for (; i < n; i++) {
        const c = message.charCodeAt(i);
        if (c <= 0x20) break;
        if (c === 0x22) return undefined;
      }
      fields.set(key, message.slice(start, i));
    }
    pairs++;
  }
  return pairs > bare ? fields : undefined;
}

/** ASCII letters and digits, `_ . - @ / $ #`, and anything beyond ASCII. */
function isKeyChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x5f ||
    c === 0x2e ||
    c === 0x2d ||
    c === 0x40 ||
    c === 0x2f ||
    c === 0x24 ||
    c === 0x23 ||
    c >= 0x80
  );
}

/** The body of a quoted value, `text[start, end)`, with its escapes resolved. */
function unquote(text: string, start: number, end: number): string {
  let out = '';
  let from = start;
  for (let i = start; i < end; i++) {
    if (text.charCodeAt(i) !== 0x5c) continue;
    out += text.slice(from, i);
    const c = text.charAt(i + 1);
    let width = 2;
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out += c;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        const hex = text.slice(i + 2, i + 6);
        if (i + 6 <= end && /^[0-9a-fA-F]{4}$/.test(hex)) {
          out += String.fromCharCode(Number.parseInt(hex, 16));
          width = 6;
        } else {
          out += '\\u';
        }
        break;
      }
      default:
        out += `\\${c}`;
    }
    i += width - 1;
    from = i + 1;
  }
  return out + text.slice(from, end);
}

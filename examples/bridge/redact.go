package main

import (
	"bytes"
	"io"
)

// secretTags are the stanza elements whose text content is a token:
// <tctoken> and <cstoken> on messages and presences, <token> in
// privacy_token notifications and issuance replies, <privacy> on group
// participants. whatsmeow's Send/Recv debug loggers (and wamock's, in the
// demo) print every stanza with XMLString, which renders such bytes as
// text or hex: the bridge's log writer blanks them out before anything is
// written, whichever component logged the line.
var secretTags = [][]byte{[]byte("tctoken"), []byte("cstoken"), []byte("token"), []byte("privacy")}

var redacted = []byte("[redacted]")

// redactingWriter blanks the content of secretTags elements in each write.
// zerolog writes one whole event per Write, so an element never straddles
// two writes.
type redactingWriter struct{ w io.Writer }

func (r redactingWriter) Write(p []byte) (int, error) {
	if _, err := r.w.Write(redactSecrets(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redactSecrets returns line with the content of every <tag …>…</tag> of
// secretTags replaced. A <privacy> element is blanked only when it holds
// text, not child elements (a privacy settings list is no secret); XML
// child content always starts with '<'.
func redactSecrets(line []byte) []byte {
	if bytes.IndexByte(line, '<') < 0 {
		return line
	}
	out := line
	for _, tag := range secretTags {
		out = redactTag(out, tag, bytes.Equal(tag, []byte("privacy")))
	}
	return out
}

func redactTag(line, tag []byte, textOnly bool) []byte {
	open := append([]byte("<"), tag...)
	closing := append(append([]byte("</"), tag...), '>')
	var out []byte
	rest := line
	for {
		i := bytes.Index(rest, open)
		if i < 0 {
			break
		}
		after := rest[i+len(open):]
		// <tokens> or <tctokenx> is another element.
		if len(after) == 0 || (after[0] != '>' && after[0] != ' ' && after[0] != '/') {
			out = append(out, rest[:i+len(open)]...)
			rest = after
			continue
		}
		end := bytes.IndexByte(after, '>')
		if end < 0 {
			break
		}
		if end > 0 && after[end-1] == '/' { // self-closing: no content
			out = append(out, rest[:i+len(open)+end+1]...)
			rest = after[end+1:]
			continue
		}
		content := after[end+1:]
		j := bytes.Index(content, closing)
		if j < 0 {
			// Cut off (a truncated log line): blank to the end.
			out = append(out, rest[:i+len(open)+end+1]...)
			out = append(out, redacted...)
			return out
		}
		out = append(out, rest[:i+len(open)+end+1]...)
		if textOnly && j > 0 && content[0] == '<' {
			out = append(out, content[:j]...)
		} else if j > 0 {
			out = append(out, redacted...)
		}
		out = append(out, closing...)
		rest = content[j+len(closing):]
	}
	if out == nil {
		return line
	}
	return append(out, rest...)
}

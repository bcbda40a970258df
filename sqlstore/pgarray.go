package sqlstore

import (
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Batches on PostgreSQL. A multi-row VALUES list binds three parameters a
// row, and PostgreSQL parses and plans every one of them: a thousand-row
// token write took longer than whatsmeow's own write of the same rows. On
// PostgreSQL the rows go as three arrays instead, unnested in the
// statement, so a batch of any size binds five parameters. The arrays are
// passed as text literals, which every PostgreSQL driver passes through as
// they are.

// The row sources that replace a VALUES list on PostgreSQL: $1 is the
// account, $2 the write time, $3.. the arrays.
const (
	unnestTokensSource = `
		SELECT $1, u.their_jid, decode(u.token, 'hex'), u.token_ts, NULLIF(u.sender_ts, 0), $2
		FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[]) AS u(their_jid, token, token_ts, sender_ts)
	`
	unnestSenderTimestampsSource = `
		SELECT $1, u.their_jid, u.sender_ts, $2
		FROM unnest($3::text[], $4::bigint[]) AS u(their_jid, sender_ts)
	`
)

// pgTextArray is the PostgreSQL array literal of items, every element
// quoted and escaped.
func pgTextArray(items []string) string {
	var b strings.Builder
	b.Grow(len(items) * 24)
	b.WriteByte('{')
	for i, item := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(item); j++ {
			if c := item[j]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(item[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// pgInt64Array is the PostgreSQL array literal of numbers.
func pgInt64Array(numbers []int64) string {
	b := make([]byte, 0, len(numbers)*11+2)
	b = append(b, '{')
	for i, n := range numbers {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(append(b, '}'))
}

// pgHexArray is the array literal of tokens in hex, for decode(.., 'hex'):
// a secret, like the tokens in it.
func pgHexArray(tokens [][]byte) secretText {
	items := make([]string, len(tokens))
	for i, token := range tokens {
		items[i] = hex.EncodeToString(token)
	}
	return secretText(pgTextArray(items))
}

// secretText is a bound parameter that holds tokens as text: passed to the
// driver as it is, redacted everywhere it could be printed (dbutil's query
// log among them).
type secretText string

func (s secretText) Value() (driver.Value, error) { return string(s), nil }
func (s secretText) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, redacted)
}
func (s secretText) String() string               { return redacted }
func (s secretText) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s secretText) MarshalText() ([]byte, error) { return []byte(redacted), nil }

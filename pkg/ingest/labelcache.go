package ingest

import (
	"strings"
	"sync"

	"github.com/logsift/logsift/pkg/labels"
)

// labelCache maps the label text of pushed streams to parsed label sets.
// Clients send the same `{...}` string in every push, so parsing once per
// string rather than once per stream and push saves most of the label work.
//
// It keeps two generations: a hit in the old one moves the entry to the
// current one, and when the current one outgrows half the byte budget it
// becomes the old one. That approximates LRU at the cost of one map swap,
// and bounds memory by bytes, because one key may be large.
type labelCache struct {
	mu        sync.Mutex
	cur, prev map[cacheKey]cached
	curBytes  int
	maxBytes  int
}

type cacheKey struct {
	text string
	json bool
}

type cached struct {
	text string // an owned copy of the key's text, which may point into a request
	json bool
	ls   labels.Labels
}

func newLabelCache(maxBytes int) *labelCache {
	return &labelCache{cur: map[cacheKey]cached{}, prev: map[cacheKey]cached{}, maxBytes: maxBytes}
}

// resolve returns the parsed labels of a stream's label text. Parse
// failures are not cached, so hostile input cannot evict good entries; a
// text with more than maxLabels labels (0: any number) is refused before it
// is parsed, which keeps a thousand-label stream cheap.
func (c *labelCache) resolve(text string, json bool, maxLabels int) (labels.Labels, error) {
	k := cacheKey{text: text, json: json}
	c.mu.Lock()
	e, ok := c.cur[k]
	if !ok {
		if e, ok = c.prev[k]; ok {
			c.put(e)
		}
	}
	c.mu.Unlock()
	if ok {
		return e.ls, nil
	}
	var ls labels.Labels
	var err error
	if json {
		ls, err = ParseJSONLabels([]byte(text), maxLabels)
	} else {
		if maxLabels > 0 {
			if n := countTextLabels(text); n > maxLabels {
				return nil, &tooManyLabelsError{count: n}
			}
		}
		// Parse's strings share memory with its input: an owned copy keeps
		// the cached set from pinning the request's buffer.
		text = strings.Clone(text)
		ls, err = labels.Parse(text)
	}
	if err != nil {
		return nil, err
	}
	if json {
		text = strings.Clone(text)
	}
	c.mu.Lock()
	c.put(cached{text: text, json: json, ls: ls})
	c.mu.Unlock()
	return ls, nil
}

func (c *labelCache) put(e cached) {
	size := len(e.text) + 64
	for _, l := range e.ls {
		size += len(l.Name) + len(l.Value) + 32
	}
	if c.curBytes+size > c.maxBytes/2 {
		c.prev = c.cur
		c.cur = make(map[cacheKey]cached, len(c.prev))
		c.curBytes = 0
	}
	c.cur[cacheKey{text: e.text, json: e.json}] = e
	c.curBytes += size
}

// countTextLabels counts the '=' signs outside quoted values, an upper
// bound of the labels in `{a="b", ...}` text that costs one pass.
func countTextLabels(s string) int {
	n := 0
	inQuote, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '=':
			n++
		}
	}
	return n
}

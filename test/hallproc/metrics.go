package hallproc

import (
	"bufio"
	"math"
	"strconv"
	"strings"
)

// Sample returns the value of the /metrics sample line that starts with
// prefix (the name with its labels).
func Sample(text, prefix string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, prefix+" ") {
			return strings.TrimPrefix(line, prefix+" "), true
		}
	}
	return "", false
}

// Bucket is one cumulative histogram bucket: upper bound and count.
type Bucket struct{ LE, N float64 }

// Buckets are the buckets of histogram name in one scrape, in their order
// in the text (ascending le).
func Buckets(text, name string) []Bucket {
	var bs []Bucket
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name+`_bucket{le="`)
		if !ok {
			continue
		}
		i := strings.Index(rest, `"}`)
		n, _ := strconv.ParseFloat(strings.TrimSpace(rest[i+2:]), 64)
		bs = append(bs, Bucket{ParseLE(rest[:i]), n})
	}
	return bs
}

// ParseLE is a bucket's le label as a number (+Inf for "+Inf").
func ParseLE(le string) float64 {
	if le == "+Inf" {
		return math.Inf(1)
	}
	v, _ := strconv.ParseFloat(le, 64)
	return v
}

// Quantile is Prometheus's histogram_quantile over ascending, cumulative,
// non-empty buckets.
func Quantile(bs []Bucket, q float64) float64 {
	rank := q * bs[len(bs)-1].N
	prevLe, prevN := 0.0, 0.0
	for _, b := range bs {
		if b.N >= rank {
			if math.IsInf(b.LE, 1) {
				return prevLe
			}
			return prevLe + (b.LE-prevLe)*(rank-prevN)/(b.N-prevN)
		}
		prevLe, prevN = b.LE, b.N
	}
	return prevLe
}

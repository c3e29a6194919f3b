package hallproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Health is the part of /healthz the harnesses read.
type Health struct {
	Ready     bool `json:"ready"`
	Connected bool `json:"mqtt_connected"`
	Pending   int  `json:"reports_pending"`
}

// GetHealth reads /healthz from the operations listener addr. On a decode
// error it returns what was decoded with the error.
func GetHealth(c *http.Client, addr string) (Health, error) {
	var h Health
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, err
}

// ErrExited is WaitHealth's answer when the process exits first.
var ErrExited = errors.New("exited")

// HealthTimeout is WaitHealth's answer when ok did not hold in time: the
// last answer and its error.
type HealthTimeout struct {
	Last    Health
	LastErr error
}

func (e *HealthTimeout) Error() string {
	return fmt.Sprintf("health not as wanted (last %+v, %v)", e.Last, e.LastErr)
}

// WaitHealth polls /healthz on addr every poll until ok holds for an
// answer read without error. It returns ErrExited once exited says the
// daemon has exited, and a *HealthTimeout after timeout.
func WaitHealth(c *http.Client, addr string, exited func() bool, timeout, poll time.Duration, ok func(Health) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		h, err := GetHealth(c, addr)
		if err == nil && ok(h) {
			return nil
		}
		if exited() {
			return ErrExited
		}
		if time.Now().After(deadline) {
			return &HealthTimeout{Last: h, LastErr: err}
		}
		time.Sleep(poll)
	}
}

// Ready is the ok of WaitHealth for a daemon ready and connected to its
// broker.
func Ready(h Health) bool { return h.Ready && h.Connected }

//go:build periph_gpiotest

// The suite against periph's own fake, gpiotest.Pin. gpiotest imports
// github.com/jonboulle/clockwork, which go.mod does not list yet; once it does
// (go get periph.io/x/conn/v3/gpio/gpiotest@v3.7.3), run with
// -tags periph_gpiotest, or drop this build tag.

package periph

import (
	"testing"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// gpiotestPin drives a gpiotest.Pin through its EdgesChan.
type gpiotestPin struct{ *gpiotest.Pin }

func (p gpiotestPin) edge(l gpio.Level) { p.EdgesChan <- l }

func (p gpiotestPin) level() gpio.Level {
	p.Lock()
	defer p.Unlock()
	return p.L
}

func TestBackendWithGpiotest(t *testing.T) {
	runSuite(t, func(name string) testPin {
		return gpiotestPin{&gpiotest.Pin{N: name, Num: -1, EdgesChan: make(chan gpio.Level, 64)}}
	})
}

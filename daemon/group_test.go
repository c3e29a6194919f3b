package daemon

import "testing"

func TestGroupWaitsForItsGoroutinesAndRefusesAfterStop(t *testing.T) {
	var g group
	release := make(chan struct{})
	ran := make(chan int, 3)
	for i := range 2 {
		if !g.Go(func() { <-release; ran <- i }) {
			t.Fatal("Go refused before Stop")
		}
	}
	waited := make(chan struct{})
	go func() {
		g.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("Wait returned while goroutines of the group ran")
	default:
	}
	close(release)
	<-waited
	if len(ran) != 2 {
		t.Fatalf("Wait returned with %d of 2 goroutines done", len(ran))
	}
	// A goroutine may start after a Wait (the group is not spent) ...
	if !g.Go(func() { ran <- 2 }) {
		t.Fatal("Go refused after Wait")
	}
	g.Stop()
	if len(ran) != 3 {
		t.Fatal("Stop returned before the group's goroutine ended")
	}
	// ... but none after Stop.
	if g.Go(func() { t.Error("ran after Stop") }) {
		t.Fatal("Go accepted after Stop")
	}
	g.Wait()
}

package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/seatbroker/seatbroker/client"
)

// A desktop client opens a session with a code; the customer joins it
// with the code; the desktop side hears that the session is running.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	desk, err := client.Dial(ctx, nodeURL, client.Options{Token: annToken, DeviceID: "laptop-1", DeviceName: "laptop"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer desk.Close()
	g, err := desk.Open(ctx, client.WithCode())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("state:", g.Session.State, "kind:", g.Session.Kind, "code digits:", len(g.Session.Code))

	remote, err := client.Dial(ctx, nodeURL, client.Options{Role: client.RoleRemote})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer remote.Close()
	s, err := remote.Join(ctx, g.Session.Code)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("remote joined:", s.State)

	for e := range desk.Events() {
		if c, ok := e.(client.SessionChanged); ok {
			fmt.Println("desktop sees:", c.Session.State)
			break
		}
	}
	if _, err := desk.CloseSession(ctx, g.Session.ID); err != nil {
		fmt.Println(err)
	}
	// Output:
	// state: standby kind: prepaid code digits: 9
	// remote joined: active
	// desktop sees: active
}

// Events tells a desktop client that an admin is ending its session, with
// a countdown, and then that it ended.
func ExampleClient_Events() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	desk, err := client.Dial(ctx, nodeURL, client.Options{Token: annToken, DeviceID: "laptop-2"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer desk.Close()
	g, err := desk.Open(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	// an admin presses "End Selected Sessions" on the License Usage page
	if _, err := demo.EndSessions(ctx, owner, []string{g.Session.ID}); err != nil {
		fmt.Println(err)
		return
	}
	for e := range desk.Events() {
		switch e := e.(type) {
		case client.Notice:
			fmt.Println("ending:", e.Reason, "by", e.EndedBy, "counting down:", e.Remaining() > 0)
		case client.Ended:
			fmt.Println("ended:", e.Reason)
			return
		}
	}
	// Output:
	// ending: terminated by owner counting down: true
	// ended: terminated
}

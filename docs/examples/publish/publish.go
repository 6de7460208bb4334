// Publish to crier from Go with net/http: one Client, whose Transport keeps
// connections alive. Prints each message's id.
//
//	CRIER_URL=http://127.0.0.1:8080 CRIER_PUBLISH_SECRET=... go run publish.go CHANNEL MESSAGE...
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

var client = &http.Client{Timeout: 10 * time.Second} // one per process

type reply struct {
	ID          string `json:"id"`
	Subscribers int    `json:"subscribers"`
}

func publish(base, channel, message string) (reply, error) {
	var r reply
	req, err := http.NewRequest("POST", base+"/pub?id="+url.QueryEscape(channel), strings.NewReader(message))
	if err != nil {
		return r, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if secret := os.Getenv("CRIER_PUBLISH_SECRET"); secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	res, err := client.Do(req)
	if err != nil {
		return r, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body) // read it all, or the connection is not reused
	if err != nil {
		return r, err
	}
	if res.StatusCode != http.StatusOK {
		return r, fmt.Errorf("publish to %s: HTTP %d %s", channel, res.StatusCode, body)
	}
	return r, json.Unmarshal(body, &r)
}

func main() {
	base := strings.TrimSuffix(os.Getenv("CRIER_URL"), "/")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	channel, messages := os.Args[1], os.Args[2:]
	for _, message := range messages {
		r, err := publish(base, channel, message)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(r.ID)
	}
}

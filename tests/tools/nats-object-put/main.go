// nats-object-put puts a file into a NATS JetStream object store with the NATS Go client
// (Debian's golang-github-nats-io-go-nats-dev): the independent writer of the object-store test of
// the JetStream source (tests/ingest/jetstream_source_test.cc), so qseal's reader of the store's
// layout is checked against another implementation, not against itself.
//
// Usage: nats-object-put URL BUCKET NAME FILE   (creates the bucket when missing; prints
// "size chunks digest").
package main

import (
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: nats-object-put URL BUCKET NAME FILE")
		os.Exit(2)
	}
	url, bucket, name, path := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	if err := put(url, bucket, name, path); err != nil {
		fmt.Fprintln(os.Stderr, "nats-object-put:", err)
		os.Exit(1)
	}
}

func put(url, bucket, name, path string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		return err
	}
	store, err := js.ObjectStore(bucket)
	if err != nil {
		store, err = js.CreateObjectStore(&nats.ObjectStoreConfig{Bucket: bucket})
		if err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := store.Put(&nats.ObjectMeta{Name: name}, f)
	if err != nil {
		return err
	}
	fmt.Println(info.Size, info.Chunks, info.Digest)
	return nil
}

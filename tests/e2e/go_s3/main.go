// An aws-sdk-go-v2 app as it would run in a pod: LoadDefaultConfig with the
// default credential chain (container credentials with
// AWS_CONTAINER_AUTHORIZATION_TOKEN, or IMDS through
// AWS_EC2_METADATA_SERVICE_ENDPOINT). Built in GOPATH mode over Debian's
// /usr/share/gocode (golang-github-aws-aws-sdk-go-v2-dev), offline.
//
//	go_s3 ENDPOINT BUCKET KEY    puts a random object, gets it back, compares
//
// Prints one JSON line: {"ok", "bytes", "accessKeyId"}.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go_s3 ENDPOINT BUCKET KEY")
		os.Exit(2)
	}
	endpoint, bucket, key := os.Args[1], os.Args[2], os.Args[3]
	ctx := context.Background()
	// aws-sdk-go-v2 1.17 predates AWS_ENDPOINT_URL: the endpoint is set in code.
	resolver := aws.EndpointResolverWithOptionsFunc(func(service, region string, options ...interface{}) (aws.Endpoint, error) {
		return aws.Endpoint{URL: endpoint, HostnameImmutable: true}, nil
	})
	cfg, err := config.LoadDefaultConfig(ctx, config.WithEndpointResolverWithOptions(resolver))
	if err != nil {
		fail(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	body := make([]byte, 64*1024)
	if _, err := rand.Read(body); err != nil {
		fail(err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		fail(err)
	}
	answer, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		fail(err)
	}
	got, err := io.ReadAll(answer.Body)
	if err != nil {
		fail(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		fail(err)
	}
	ok := bytes.Equal(got, body)
	out, _ := json.Marshal(map[string]interface{}{"ok": ok, "bytes": len(got), "accessKeyId": creds.AccessKeyID})
	fmt.Println(string(out))
	if !ok {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go_s3:", err)
	os.Exit(1)
}

// An aws-sdk-go (v1) app as it would run in a pod, configured the way s5cmd
// configures it: a session with the shared config enabled and the default
// credential chain (container credentials with AWS_CONTAINER_AUTHORIZATION_TOKEN,
// or IMDS through AWS_EC2_METADATA_SERVICE_ENDPOINT). Built in GOPATH mode
// over Debian's /usr/share/gocode (golang-github-aws-aws-sdk-go-dev 1.44),
// offline.
//
//	go_s3_v1 ENDPOINT BUCKET KEY    puts a random object, lists it, gets it back, compares
//
// Prints one JSON line: {"ok", "bytes", "listed", "accessKeyId"}.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/s3"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go_s3_v1 ENDPOINT BUCKET KEY")
		os.Exit(2)
	}
	endpoint, bucket, key := os.Args[1], os.Args[2], os.Args[3]
	// aws-sdk-go 1.44 predates AWS_ENDPOINT_URL: the endpoint is set in code
	// (s5cmd's --endpoint-url). moto serves path-style addressing only.
	sess, err := session.NewSessionWithOptions(session.Options{
		Config:            aws.Config{Endpoint: aws.String(endpoint), S3ForcePathStyle: aws.Bool(true)},
		SharedConfigState: session.SharedConfigEnable,
	})
	if err != nil {
		fail(err)
	}
	client := s3.New(sess)
	body := make([]byte, 64*1024)
	if _, err := rand.Read(body); err != nil {
		fail(err)
	}
	if _, err := client.PutObject(&s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		fail(err)
	}
	listing, err := client.ListObjectsV2(&s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		fail(err)
	}
	listed := false
	for _, object := range listing.Contents {
		listed = listed || aws.StringValue(object.Key) == key
	}
	answer, err := client.GetObject(&s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		fail(err)
	}
	got, err := io.ReadAll(answer.Body)
	if err != nil {
		fail(err)
	}
	creds, err := sess.Config.Credentials.Get()
	if err != nil {
		fail(err)
	}
	ok := bytes.Equal(got, body) && listed
	out, _ := json.Marshal(map[string]interface{}{"ok": ok, "bytes": len(got), "listed": listed,
		"accessKeyId": creds.AccessKeyID})
	fmt.Println(string(out))
	if !ok {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go_s3_v1:", err)
	os.Exit(1)
}

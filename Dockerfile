# ferry: one static binary. Build: docker build -t ferry .
# ferry version shows FERRY_COMMIT and the build date (.git stays out of the
# context): docker build --build-arg FERRY_COMMIT=$(git describe --always --dirty) -t ferry .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG FERRY_COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags="-s -w -X main.buildCommit=${FERRY_COMMIT} -X main.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    -o /out/ferry ./cmd/ferry

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ferry /usr/local/bin/ferry
USER nonroot
EXPOSE 8080
ENTRYPOINT ["ferry"]
CMD ["serve"]

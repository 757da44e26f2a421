# One small image holds the server (/altair, the default command) and the
# tap simulator (/tap). Both are static binaries on an empty base image,
# run as an unprivileged user.
FROM golang:1.25 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/altair . \
 && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/tap ./client \
 && mkdir /out/data

FROM scratch
COPY --from=build /out/altair /out/tap /
# The journal lives in /data: keep it on a volume to keep the pours.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV PORT=8338 DATA_FILE=/data/beers.jsonl
EXPOSE 8338
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 CMD ["/altair", "healthcheck"]
CMD ["/altair"]

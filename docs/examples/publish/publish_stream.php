<?php
// Publish to crier from PHP without extensions (file_get_contents). PHP's
// http:// stream opens a new connection per request: use publish.php (curl)
// to keep one alive. Prints each message's id.
//   CRIER_URL=http://127.0.0.1:8080 CRIER_PUBLISH_SECRET=... php publish_stream.php CHANNEL MESSAGE...
$base = rtrim(getenv('CRIER_URL') ?: 'http://127.0.0.1:8080', '/');
$headers = "Content-Type: text/plain; charset=utf-8\r\n";
if (getenv('CRIER_PUBLISH_SECRET')) {
    $headers .= 'Authorization: Bearer ' . getenv('CRIER_PUBLISH_SECRET') . "\r\n";
}

function publish(string $channel, string $message): array
{
    global $base, $headers;
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => $headers,
        'content' => $message,
        'timeout' => 10,
        'ignore_errors' => true, // return error bodies instead of a warning
    ]]);
    $body = file_get_contents($base . '/pub?id=' . rawurlencode($channel), false, $context);
    $status = (int) explode(' ', $http_response_header[0] ?? 'HTTP/1.1 0')[1];
    if ($body === false || $status !== 200) {
        throw new RuntimeException("publish to $channel: HTTP $status $body");
    }
    return json_decode($body, true); // {"channel":…,"id":…,"subscribers":…,…}
}

[, $channel] = $argv;
foreach (array_slice($argv, 2) as $message) {
    echo publish($channel, $message)['id'], "\n";
}

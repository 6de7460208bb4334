<?php
// Publish to crier from PHP with the curl extension (php-curl): one handle,
// reused, keeps the connection alive. Prints each message's id.
//   CRIER_URL=http://127.0.0.1:8080 CRIER_PUBLISH_SECRET=... php publish.php CHANNEL MESSAGE...
$base = rtrim(getenv('CRIER_URL') ?: 'http://127.0.0.1:8080', '/');
$headers = ['Content-Type: text/plain; charset=utf-8'];
if (getenv('CRIER_PUBLISH_SECRET')) {
    $headers[] = 'Authorization: Bearer ' . getenv('CRIER_PUBLISH_SECRET');
}
$curl = curl_init(); // one handle for every publish: its connection is reused

function publish(string $channel, string $message): array
{
    global $base, $headers, $curl;
    curl_setopt_array($curl, [
        CURLOPT_URL => $base . '/pub?id=' . rawurlencode($channel),
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => $message,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT => 10,
    ]);
    $body = curl_exec($curl);
    $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    if ($body === false || $status !== 200) {
        throw new RuntimeException("publish to $channel: HTTP $status " . ($body ?: curl_error($curl)));
    }
    return json_decode($body, true); // {"channel":…,"id":…,"subscribers":…,…}
}

[, $channel] = $argv;
foreach (array_slice($argv, 2) as $message) {
    echo publish($channel, $message)['id'], "\n";
}

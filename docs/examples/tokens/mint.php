<?php
// Mint a crier channel token (docs/TOKENS.md) with PHP's standard library only.
//
// usage: php mint.php KEY CHANNELS PUBLISH TTL
//   e.g. php mint.php "$CRIER_KEY" 'news,chat-*' 'chat-*' 3600
//   (PUBLISH may be '' for a subscribe-only token)

function b64url(string $data): string
{
    return rtrim(strtr(base64_encode($data), '+/', '-_'), '=');
}

function mint(string $key, array $channels, array $publish, int $ttl): string
{
    $header = ['alg' => 'HS256', 'typ' => 'JWT'];
    $claims = ['exp' => time() + $ttl, 'channels' => array_values($channels)];
    if ($publish) {
        $claims['publish'] = array_values($publish);
    }
    $signingInput = b64url(json_encode($header)) . '.' . b64url(json_encode($claims));
    $signature = hash_hmac('sha256', $signingInput, $key, true); // true = raw bytes
    return $signingInput . '.' . b64url($signature);
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    if ($argc !== 5) {
        fwrite(STDERR, "usage: php mint.php KEY CHANNELS PUBLISH TTL\n");
        exit(2);
    }
    [, $key, $channels, $publish, $ttl] = $argv;
    $split = fn(string $text): array => array_values(array_filter(explode(',', $text), 'strlen'));
    echo mint($key, $split($channels), $split($publish), (int) $ttl), "\n";
}

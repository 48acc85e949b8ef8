"""A speech synthesiser process for the development set's dialogue (espeak-ng).

espeak-ng's library and voices ship in the ``espeakng-loader`` wheel (GPL-3.0; used only to
make development data). Its output depends on what it synthesised before in the same process
(state that neither re-initialising nor its random seed resets) and, unless seeded, on the
clock, so every conversation is said by a fresh, seeded process: ``python -m
introdetect.devset.espeak`` reads a JSON list of ``[voice, words_per_minute, pitch, text,
pause_samples]`` on stdin and writes int16 samples at :data:`RATE` to stdout, each sentence
followed by its pause. The same list gives the same samples, and a list's first sentences
give its first samples. Imports only the standard library and the loader (~0.1 s a
conversation).
"""

from __future__ import annotations

import ctypes
import json
import sys

RATE = 22050  # espeak-ng's output rate
_AUDIO_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: synthesise into the callback
_PARAM_RATE, _PARAM_PITCH = 1, 3  # espeak_PARAMETER
_POS_CHARACTER = 1
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def serve() -> None:
    """Say the sentences of the JSON list on stdin; samples to stdout."""
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    got = lib.espeak_Initialize(_AUDIO_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
    if got != RATE:
        sys.exit(f"espeak-ng: initialisation failed (returned {got})")
    # initialising seeds C's rand() from the clock (noise in the voice); fixed instead
    lib.espeak_ng_SetRandSeed(ctypes.c_long(1))
    ctypes.CDLL(None).srand(1)
    out = sys.stdout.buffer

    def collect(wav, n: int, _events) -> int:
        if n > 0:
            out.write(ctypes.string_at(wav, 2 * n))
        return 0

    callback = _CALLBACK(collect)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    for voice, rate, pitch, text, pause in json.load(sys.stdin):
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            sys.exit(f"espeak-ng: no voice {voice!r}")
        lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
        lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        raw = text.encode()
        lib.espeak_Synth(raw, len(raw) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
        lib.espeak_Synchronize()
        out.write(bytes(2 * int(pause)))
    out.flush()


if __name__ == "__main__":
    serve()

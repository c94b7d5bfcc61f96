"""An echo bot built only from pipecat-ai's own parts — ``TwilioFrameSerializer`` and its WebSocket server
transport — as a Pipecat user would write it for Twilio. Run as its own process (pipecat pins its own
dependencies, so it lives in its own virtualenv: ``make pipecat-venv``):

    python pipecat_echo_bot.py PORT

Prints ``READY`` once listening, ``DTMF <digit>`` per key, and ends the pipeline (closing the stream)
on ``#``."""

from __future__ import annotations

import asyncio
import sys

from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame, InputDTMFFrame, OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.server import (
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)


class Echo(FrameProcessor):
    """The caller's audio straight back; DTMF reported on stdout."""

    def __init__(self) -> None:
        super().__init__()
        self.task: PipelineTask | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(
                OutputAudioRawFrame(audio=frame.audio, sample_rate=frame.sample_rate, num_channels=1)
            )
        elif isinstance(frame, InputDTMFFrame):
            print(f"DTMF {frame.button.value}", flush=True)
            if frame.button.value == "#" and self.task is not None:
                await self.task.queue_frame(EndFrame())
        else:
            await self.push_frame(frame, direction)


async def main(port: int) -> None:
    serializer = TwilioFrameSerializer(
        stream_sid="", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    transport = SingleClientWebsocketServerTransport(
        params=SingleClientWebsocketServerParams(
            serializer=serializer, audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False
        ),
        host="127.0.0.1",
        port=port,
    )
    echo = Echo()
    task = PipelineTask(
        Pipeline([transport.input(), echo, transport.output()]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
    )
    echo.task = task

    @transport.event_handler("on_websocket_ready")
    async def ready(_transport: object) -> None:
        print("READY", flush=True)

    @transport.event_handler("on_client_connected")
    async def connected(_transport: object, _ws: object) -> None:
        print("CONNECTED", flush=True)

    @transport.event_handler("on_client_disconnected")
    async def disconnected(_transport: object, _ws: object) -> None:
        print("DISCONNECTED", flush=True)
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

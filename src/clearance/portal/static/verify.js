// The verification page: camera selfie, the liveness challenge and the upload.
// Served as a file (the Content-Security-Policy allows no inline script).
"use strict";

(function () {
  const form = document.getElementById("verify");
  if (!form) return;
  const video = document.getElementById("camera");
  const prompt = document.getElementById("prompt");
  const state = document.getElementById("challenge-state");
  const message = document.getElementById("message");
  const maxFrames = Number(form.dataset.maxFrames || "30");
  const steps = [
    ["Turn your head to your left", 4],
    ["Now turn to your right", 4],
    ["Blink", 4],
  ];
  const FRAME_MS = 300;
  const MAX_SIDE = 640;
  let stream = null;
  let selfieBlob = null;
  let frames = [];

  for (const el of document.querySelectorAll(".needs-script")) el.hidden = false;

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function camera() {
    if (stream) return stream;
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" },
      audio: false,
    });
    video.srcObject = stream;
    await video.play();
    while (!video.videoWidth) await sleep(50);
    return stream;
  }

  function grab() {
    // Unmirrored pixels, as the camera saw them (the server expects this orientation).
    const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
  }

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
  }

  document.getElementById("take-selfie").addEventListener("click", async () => {
    try {
      await camera();
      selfieBlob = await grab();
      const preview = document.getElementById("selfie-preview");
      preview.src = URL.createObjectURL(selfieBlob);
      preview.hidden = false;
      say("Selfie taken.");
    } catch (err) {
      say("The camera is not available: " + err.name + ". Upload a selfie instead.", true);
    }
  });

  document.getElementById("start-challenge").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    frames = [];
    try {
      await camera();
      prompt.textContent = "Look at the camera";
      await sleep(600);
      for (const [text, count] of steps) {
        prompt.textContent = text;
        for (let i = 0; i < count && frames.length < maxFrames; i++) {
          await sleep(FRAME_MS);
          frames.push(await grab());
        }
      }
      prompt.textContent = "";
      state.textContent = "Challenge recorded (" + frames.length + " frames).";
      state.dataset.frames = String(frames.length);
    } catch (err) {
      prompt.textContent = "";
      say("The camera is not available: " + err.name + ".", true);
    } finally {
      button.disabled = false;
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const documentFile = document.getElementById("document").files[0];
    const selfieFile = document.getElementById("selfie").files[0];
    if (!documentFile) return say("Choose a photo of your document.", true);
    if (!selfieBlob && !selfieFile) return say("Upload or take a selfie.", true);
    const data = new FormData();
    data.append("csrf", document.getElementById("csrf").value);
    data.append("document", documentFile);
    data.append("selfie", selfieBlob || selfieFile, "selfie.jpg");
    frames.forEach((blob, i) => data.append("frame", blob, "frame-" + i + ".jpg"));
    const submit = document.getElementById("submit");
    submit.disabled = true;
    say("Checking your document and photos. This takes a few seconds…");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const body = await response.json();
      if (response.ok) {
        window.location.assign(body.location);
        return;
      }
      say(body.error || "The verification failed.", true);
    } catch (err) {
      say("The upload failed: " + err.message, true);
    } finally {
      submit.disabled = false;
    }
  });
})();

// The 3D flight view: a world's voxels, an episode's path, its start, target and task-spec
// geometry, a drone marker moved by a time slider, and a live marker from the agents stream.
// voxelsim's axes are x, y horizontal and z down; three.js has y up, so a voxelsim point
// (x, y, z) is drawn at (x, -z, y) (a rotation, not a mirror).
import * as THREE from "three";
import { OrbitControls } from "/static/vendor/three/OrbitControls.js";

const LIVE_FPS = 10;     // renders a second for the live marker (a world is tens of thousands of cubes)
const FILLED = 0x10, SPARSE = 0x20, GROUND = 0x40, INTEREST = 0x100;
const COLOURS = {
  start: 0x1e8e4e, target: 0xc0392b, drone: 0xff8c00, live: 0xd6249f, spec: 0xf1c40f,
  interest: 0xff2d55, sparse: 0x4f9a45, tower: 0xc9ced6,
};

export const toScene = (p) => new THREE.Vector3(p[0], -p[2], p[1]);

// A colour ramp from blue (0) through green and yellow to red (1).
function ramp(f) {
  const colour = new THREE.Color();
  colour.setHSL((1 - Math.max(0, Math.min(1, f))) * 0.66, 0.9, 0.5);
  return colour;
}

function resolvePoint(point, landmarks) {
  if (Array.isArray(point) && point.length === 3 && point.every((v) => typeof v === "number")) return point;
  if (typeof point === "string") return landmarks[point] || null;
  if (point && typeof point === "object" && point.from !== undefined) {
    const base = resolvePoint(point.from, landmarks);
    const offset = Array.isArray(point.offset) ? point.offset : [0, 0, 0];
    return base ? base.map((v, i) => v + (offset[i] || 0)) : null;
  }
  return null;
}

export class FlightView {
  constructor(canvas, legend) {
    this.canvas = canvas;
    this.legend = legend;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0xcfe0f0);
    this.camera = new THREE.PerspectiveCamera(50, 2, 0.5, 5000);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.addEventListener("change", () => this.render());
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x667788, 1.6));
    const sun = new THREE.DirectionalLight(0xffffff, 1.4);
    sun.position.set(0.4, 1, 0.25);
    this.scene.add(sun);
    this.groups = { world: new THREE.Group(), path: new THREE.Group(), marks: new THREE.Group() };
    for (const group of Object.values(this.groups)) this.scene.add(group);
    this.drone = new THREE.Mesh(new THREE.SphereGeometry(0.9, 20, 14), new THREE.MeshLambertMaterial({ color: COLOURS.drone }));
    this.live = new THREE.Mesh(new THREE.SphereGeometry(0.9, 20, 14), new THREE.MeshLambertMaterial({ color: COLOURS.live }));
    this.live.visible = false;
    this.scene.add(this.drone, this.live);
    this.track = null;
    this.colourMode = "time";
    this.pending = null;
    this.lastRender = 0;
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
  }

  resize() {
    const width = this.canvas.clientWidth || 800;
    const height = this.canvas.clientHeight || 520;
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  render() {
    this.renderer.render(this.scene, this.camera);
  }

  // One render on the next animation frame, at most LIVE_FPS a second, however many updates came.
  requestRender() {
    if (this.pending) return;
    const wait = Math.max(0, this.lastRender + 1000 / LIVE_FPS - performance.now());
    this.pending = setTimeout(() => requestAnimationFrame(() => {
      this.pending = null;
      this.lastRender = performance.now();
      this.render();
    }), wait);
  }

  clear(group) {
    for (const child of [...group.children]) {
      group.remove(child);
      child.traverse((node) => {
        if (node.geometry) node.geometry.dispose();
        if (node.material) node.material.dispose();
      });
    }
  }

  // Nothing drawn: another run was opened.
  reset() {
    for (const group of Object.values(this.groups)) this.clear(group);
    this.track = null;
    this.drone.visible = false;
    this.live.visible = false;
    this.liveFramed = false;
    if (this.legend) this.legend.replaceChildren();
    this.render();
  }

  // world: GET /worlds/<scenario>/<seed>; episode: GET /runs/<id>/episodes/<it>/<seed>
  show(world, episode, colourMode = "time") {
    this.colourMode = colourMode;
    this.showWorld(world);
    this.track = episode.track;
    this.episode = episode;
    this.showPath();
    this.showMarks(episode, world);
    this.frame(world);
    this.setTime(1);
    this.updateLegend();
  }

  showWorld(world) {
    this.clear(this.groups.world);
    const count = world.count;
    if (!count) return;
    const mesh = new THREE.InstancedMesh(new THREE.BoxGeometry(1, 1, 1), new THREE.MeshLambertMaterial(), count);
    const matrix = new THREE.Matrix4();
    const colour = new THREE.Color();
    const coords = world.coords;
    const bits = world.bits;
    const zTop = world.bounds.min[2];
    const zBottom = world.bounds.max[2];
    const ground = new THREE.Color(0x8a6f4e);
    const high = new THREE.Color(0xd9cfa8);
    for (let i = 0; i < count; i++) {
      const x = coords[3 * i], y = coords[3 * i + 1], z = coords[3 * i + 2];
      matrix.makeTranslation(x, -z, y);
      mesh.setMatrixAt(i, matrix);
      const b = bits[i];
      if (b & INTEREST) colour.setHex(COLOURS.interest);
      else if ((b & SPARSE) && !(b & GROUND)) colour.setHex(COLOURS.sparse);
      else if (!(b & GROUND) && z < -60) colour.setHex(COLOURS.tower);
      else {
        const f = zBottom > zTop ? (zBottom - z) / Math.max(1, Math.min(60, zBottom - zTop)) : 0;
        colour.copy(ground).lerp(high, Math.max(0, Math.min(1, f)));
        if (b & SPARSE) colour.lerp(new THREE.Color(COLOURS.sparse), 0.6);
      }
      mesh.setColorAt(i, colour);
    }
    mesh.instanceMatrix.needsUpdate = true;
    if (mesh.instanceColor) mesh.instanceColor.needsUpdate = true;
    this.groups.world.add(mesh);
    // INTEREST cells also get a halo so they stand out among thousands of cubes.
    for (let i = 0; i < count; i++) {
      if (bits[i] & INTEREST) {
        const halo = new THREE.Mesh(new THREE.SphereGeometry(1.6, 12, 8),
          new THREE.MeshBasicMaterial({ color: COLOURS.interest, transparent: true, opacity: 0.25, depthWrite: false }));
        halo.position.copy(toScene([coords[3 * i], coords[3 * i + 1], coords[3 * i + 2]]));
        this.groups.world.add(halo);
      }
    }
  }

  pathColours() {
    const track = this.track;
    const n = track.t.length;
    const colours = new Float32Array(3 * n);
    const values = this.colourMode === "speed" ? track.speed : track.t;
    let low = Infinity, high = -Infinity;
    for (const v of values) { if (v < low) low = v; if (v > high) high = v; }
    const span = high > low ? high - low : 1;
    for (let i = 0; i < n; i++) {
      const c = ramp((values[i] - low) / span);
      colours.set([c.r, c.g, c.b], 3 * i);
    }
    this.range = { low: isFinite(low) ? low : 0, high: isFinite(high) ? high : 0 };
    return colours;
  }

  showPath() {
    this.clear(this.groups.path);
    const track = this.track;
    const n = track.t.length;
    if (!n) return;
    const positions = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      const v = toScene([track.pos[3 * i], track.pos[3 * i + 1], track.pos[3 * i + 2]]);
      positions.set([v.x, v.y, v.z], 3 * i);
    }
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.BufferAttribute(positions, 3));
    geometry.setAttribute("color", new THREE.BufferAttribute(this.pathColours(), 3));
    this.groups.path.add(new THREE.Line(geometry, new THREE.LineBasicMaterial({ vertexColors: true })));
    this.groups.path.add(new THREE.Points(geometry, new THREE.PointsMaterial({ vertexColors: true, size: 5, sizeAttenuation: false })));
  }

  colourBy(mode) {
    this.colourMode = mode;
    const geometry = this.groups.path.children[0] && this.groups.path.children[0].geometry;
    if (geometry) {
      geometry.setAttribute("color", new THREE.BufferAttribute(this.pathColours(), 3));
      this.updateLegend();
      this.render();
    }
  }

  sphere(point, radius, colour, opacity = 1) {
    const mesh = new THREE.Mesh(new THREE.SphereGeometry(radius, 20, 14),
      opacity < 1 ? new THREE.MeshBasicMaterial({ color: colour, transparent: true, opacity, depthWrite: false })
        : new THREE.MeshLambertMaterial({ color: colour }));
    mesh.position.copy(toScene(point));
    this.groups.marks.add(mesh);
    return mesh;
  }

  showMarks(episode, world) {
    this.clear(this.groups.marks);
    const landmarks = { ...(episode.landmarks || {}) };
    if (episode.start) landmarks.start = episode.start;
    if (episode.target) landmarks.target = episode.target;
    if (episode.start) this.sphere(episode.start, 1.0, COLOURS.start);
    if (episode.target) {
      this.sphere(episode.target, 0.7, COLOURS.target);
      this.sphere(episode.target, 1.0, COLOURS.target, 0.25);   // the success radius
    }
    const spec = episode.task_spec;
    const checks = (spec && Array.isArray(spec.checks)) ? spec.checks : [];
    const bounds = world.bounds;
    for (const check of checks) {
      const kind = check && check.kind;
      if (kind === "reach" || kind === "end_near") {
        const p = resolvePoint(check.point, landmarks);
        if (p) this.sphere(p, check.radius || (kind === "reach" ? 1.0 : 1.5), COLOURS.spec, 0.35);
      } else if (kind === "visit") {
        const points = (check.points || []).map((p) => resolvePoint(p, landmarks)).filter(Boolean);
        for (const p of points) this.sphere(p, check.radius || 1.5, COLOURS.spec, 0.35);
        if (points.length > 1) {
          const geometry = new THREE.BufferGeometry().setFromPoints(points.map(toScene));
          const line = new THREE.Line(geometry, new THREE.LineDashedMaterial({ color: COLOURS.spec, dashSize: 1, gapSize: 0.6 }));
          line.computeLineDistances();
          this.groups.marks.add(line);
        }
      } else if (kind === "orbit") {
        const centre = resolvePoint(check.centre, landmarks);
        if (!centre) continue;
        const inner = check.min_radius || 0, outer = check.max_radius || inner + 1;
        const ring = new THREE.Mesh(new THREE.RingGeometry(inner, outer, 64),
          new THREE.MeshBasicMaterial({ color: COLOURS.spec, transparent: true, opacity: 0.35, side: THREE.DoubleSide, depthWrite: false }));
        ring.rotation.x = -Math.PI / 2;
        ring.position.copy(toScene(centre));
        this.groups.marks.add(ring);
      } else if (kind === "altitude") {
        for (const z of [check.min_z, check.max_z]) {
          if (typeof z !== "number") continue;
          const w = bounds.max[0] - bounds.min[0] + 1, d = bounds.max[1] - bounds.min[1] + 1;
          const plane = new THREE.Mesh(new THREE.PlaneGeometry(w, d),
            new THREE.MeshBasicMaterial({ color: 0x3498db, transparent: true, opacity: 0.12, side: THREE.DoubleSide, depthWrite: false }));
          plane.rotation.x = -Math.PI / 2;
          plane.position.copy(toScene([(bounds.min[0] + bounds.max[0]) / 2, (bounds.min[1] + bounds.max[1]) / 2, z]));
          this.groups.marks.add(plane);
        }
      }
    }
  }

  // Aim the camera at the path (or the world when there is no path).
  frame(world) {
    const box = new THREE.Box3();
    const track = this.track;
    for (let i = 0; i < track.t.length; i++) box.expandByPoint(toScene([track.pos[3 * i], track.pos[3 * i + 1], track.pos[3 * i + 2]]));
    if (this.episode.target) box.expandByPoint(toScene(this.episode.target));
    if (box.isEmpty()) {
      box.expandByPoint(toScene(world.bounds.min));
      box.expandByPoint(toScene(world.bounds.max));
    }
    const centre = box.getCenter(new THREE.Vector3());
    const size = Math.max(25, box.getSize(new THREE.Vector3()).length());
    this.controls.target.copy(centre);
    this.camera.position.copy(centre).add(new THREE.Vector3(-0.7 * size, 0.65 * size, 0.9 * size));
    this.camera.far = Math.max(2000, 20 * size);
    this.camera.updateProjectionMatrix();
    this.controls.update();
  }

  duration() {
    const t = this.track && this.track.t;
    return t && t.length ? t[t.length - 1] : 0;
  }

  // fraction in [0, 1] of the flight's time; moves the drone marker; returns the time in s.
  setTime(fraction) {
    const track = this.track;
    if (!track || !track.t.length) { this.drone.visible = false; this.render(); return null; }
    const n = track.t.length;
    const t = track.t[0] + fraction * (track.t[n - 1] - track.t[0]);
    let i = 0;
    while (i < n - 1 && track.t[i + 1] < t) i++;
    const j = Math.min(n - 1, i + 1);
    const span = track.t[j] - track.t[i];
    const f = span > 0 ? Math.max(0, Math.min(1, (t - track.t[i]) / span)) : 0;
    const a = toScene([track.pos[3 * i], track.pos[3 * i + 1], track.pos[3 * i + 2]]);
    const b = toScene([track.pos[3 * j], track.pos[3 * j + 1], track.pos[3 * j + 2]]);
    this.drone.position.copy(a.lerp(b, f));
    this.drone.visible = true;
    this.render();
    return t;
  }

  // The live agent's position (voxelsim axes) from the agents stream, or null to hide it.
  setLive(pos) {
    this.live.visible = Array.isArray(pos);
    if (this.live.visible) {
      this.live.position.copy(toScene(pos));
      if (!this.track && !this.liveFramed) {          // nothing drawn yet: look at the agent
        this.liveFramed = true;
        this.controls.target.copy(this.live.position);
        this.camera.position.copy(this.live.position).add(new THREE.Vector3(-20, 18, 25));
        this.controls.update();
      }
    }
    this.requestRender();
  }

  updateLegend() {
    if (!this.legend) return;
    const item = (colour, text) => {
      const row = document.createElement("div");
      const dot = document.createElement("i");
      dot.style.background = `#${new THREE.Color(colour).getHexString()}`;
      row.append(dot, text);
      return row;
    };
    const unit = this.colourMode === "speed" ? "m/s" : "s";
    const range = this.range || { low: 0, high: 0 };
    this.legend.replaceChildren(
      item(COLOURS.start, "start"), item(COLOURS.target, "target"), item(COLOURS.drone, "drone at the slider's time"),
      item(COLOURS.live, "live agent (rendered runs)"), item(COLOURS.interest, "INTEREST cells"), item(COLOURS.spec, "task spec"),
      item(ramp(0).getHex(), `path ${this.colourMode} ${range.low.toFixed(1)} ${unit}`),
      item(ramp(1).getHex(), `path ${this.colourMode} ${range.high.toFixed(1)} ${unit}`));
  }
}

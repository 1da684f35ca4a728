# dislomob on a CPU machine: docker build -t dislomob . && docker run --rm -v $PWD:/work dislomob repro
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends make git && rm -rf /var/lib/apt/lists/*
WORKDIR /work
COPY . /work
RUN make venv
ENTRYPOINT ["make"]
CMD ["repro"]
